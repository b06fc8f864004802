"""Formats written the way people and tools write them: national phone numbers with
configurable regions, secret keys under every naming style, RFC 3986 passwords in URLs
(and the user names that are not mailboxes), short-octet IPv4 against version strings,
JSON escapes and HTML entities with offsets in the original text.

Each case gives the text and the exact substrings expected per type; both scanning
paths (Hyperscan prefilter when installed, and pure ``re``) must agree.
"""

from __future__ import annotations

import pytest

from secops.dlp import Classifier, Policy, PolicyError, prefilter

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYz9AbCdEfGh"  # 40 characters, mixed case and digits


@pytest.fixture(scope="module", params=["prefilter", "re"])
def classifier(request: pytest.FixtureRequest) -> Classifier:
    if request.param == "prefilter" and not prefilter.AVAILABLE:
        pytest.skip("hyperscan is not installed")
    return Classifier(use_prefilter=request.param == "prefilter")


def found(classifier: Classifier, text: str, kind: str | None = None) -> list[tuple[str, str]]:
    return [(f.type, text[f.start:f.end]) for f in classifier.scan_text(text).findings
            if kind is None or f.type == kind]


NATIONAL_PHONES = [
    ("Please call our London office on 020 7946 0958.", "020 7946 0958"),
    ("Tel.: 030 12345678 (Zentrale)", "030 12345678"),
    ("Mobil 0176 12345678", "0176 12345678"),
    ("Handy: 0151/23456789", "0151/23456789"),
    ("Téléphone : 01 23 45 67 89", "01 23 45 67 89"),
    ("portable 06.12.34.56.78", "06.12.34.56.78"),
    ("mobile 07700 900123", "07700 900123"),
    ("Office (212) 736-4100 ext", "(212) 736-4100"),
    ("Kundenservice 089 2180 2450", "089 2180 2450"),
]


@pytest.mark.parametrize(("text", "number"), NATIONAL_PHONES)
def test_national_phone_formats(classifier: Classifier, text: str, number: str) -> None:
    assert found(classifier, text, "phone_number") == [("phone_number", number)]


NOT_PHONES = [
    "Order no. 0176 12345678 shipped",
    "invoice 030 12345678",
    "Meeting on 12.03.2024 in Berlin",
    "released 2024-03-12",
    "card ending 4111 1111 1111",
    "ticket 020 7946 0958",
    "SKU 01 23 45 67 89",
    "batch 912-36-6939",
    "build 20240312 finished in 4 0123 seconds",
]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_numbers_that_are_not_phones(classifier: Classifier, text: str) -> None:
    assert found(classifier, text, "phone_number") == []


def test_default_regions_are_configurable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = "Tel. 030 12345678"
    site = tmp_path / "pii.yaml"
    site.write_text("pack: PII\ncategory: PII\nmin_score: 0.5\ntypes: [phone_number]\n"
                    "phone_regions: [us]\n")
    us_only = Classifier(Policy.load(site))
    assert us_only.policy.phone_regions == ("US",)
    assert found(us_only, text) == []
    site.write_text("pack: PII\ncategory: PII\nmin_score: 0.5\ntypes: [phone_number]\n"
                    "phone_regions: [DE]\n")
    assert found(Classifier(Policy.load(site)), text) == [("phone_number", "030 12345678")]
    assert Policy.default().phone_regions == ("US", "GB", "DE", "FR")
    site.write_text("pack: PII\ncategory: PII\ntypes: [phone_number]\nphone_regions: [XX]\n")
    with pytest.raises(PolicyError, match="unknown region codes"):
        Policy.load(site)


SECRET_STYLES = [
    f"awsSecretAccessKey = \"{SECRET}\"",  # Java / JavaScript camelCase
    f"AWS_SECRET_ACCESS_KEY={SECRET}",  # .env
    f"aws-secret-access-key: {SECRET}",  # YAML kebab-case
    f'{{"AccessKeyId": "ASIAZ3Q7RWLXMJ5OPQ2B", "SecretAccessKey": "{SECRET}"}}',  # JSON
    f"[default]\naws_secret_access_key = {SECRET}\n",  # INI credentials file
    f'SecretAccessKey: "{SECRET}",',  # Go struct literal
    f'os.environ["AWS_SECRET_ACCESS_KEY"] = "{SECRET}"',  # Python
    f'  secret_key = "{SECRET}"',  # Terraform provider block
    f"aws.secret.access.key={SECRET}",  # Java properties
    f"const awsSecret = '{SECRET}';",  # JavaScript
]


@pytest.mark.parametrize("text", SECRET_STYLES)
def test_aws_secret_under_any_naming_style(classifier: Classifier, text: str) -> None:
    assert ("aws_secret_access_key", SECRET) in found(classifier, text)


def test_forty_characters_without_a_secret_name_are_not_a_secret(classifier: Classifier) -> None:
    text = f"commit_message_digest = {SECRET}"
    assert found(classifier, text, "aws_secret_access_key") == []


URL_PASSWORDS = [
    ("redis://:s3cr3tPass@cache.corp.net:6379/0", "s3cr3tPass"),
    ("postgres://app:p%40ss%2Fw0rd@db.corp.net/prod", "p%40ss%2Fw0rd"),
    ("amqp://svc:it's(ok)!*~@mq.corp.net/", "it's(ok)!*~"),
    ("mongodb://root:a$b&c+d,e;f=g@db7.corp.net:27017", "a$b&c+d,e;f=g"),
    ("ftp://ops:pa:ss:word@files.corp.net/in", "pa:ss:word"),
    ('DATABASE_URL="mysql://u_1.x-y:Tr0ub4dor&3@db-1.corp.net/x"', "Tr0ub4dor&3"),
]


@pytest.mark.parametrize(("text", "password"), URL_PASSWORDS)
def test_passwords_in_urls_per_rfc3986(classifier: Classifier, text: str, password: str) -> None:
    assert found(classifier, text) == [("password_in_url", password)]


@pytest.mark.parametrize("text", [
    "git@github.com:acme/payments.git",
    "ssh://deploy@build.corp.net/srv/app",
    "git clone ssh://git@gitlab.corp.net:2222/acme/app.git",
    "ssh -i ~/.ssh/id_ed25519 -p 2222 deploy@bastion.corp.net",
    "scp dump.sql backup@store.corp.net:/var/backups/",
    "redis://:password@cache.corp.net",  # a placeholder password, and no mailbox either
    "https://build-bot@ci.corp.net/job/1",
])
def test_url_and_ssh_users_are_not_mailboxes(classifier: Classifier, text: str) -> None:
    assert found(classifier, text, "email") == []


@pytest.mark.parametrize(("text", "email"), [
    ("https://app.corp.net/invite?to=jane.roe@corp.net", "jane.roe@corp.net"),
    ("Contact: ops-team@corp.net: any time", "ops-team@corp.net"),
    ("mailto:john.doe@corp.net", "john.doe@corp.net"),
])
def test_mailboxes_next_to_urls_are_still_found(classifier: Classifier, text: str,
                                                email: str) -> None:
    assert found(classifier, text, "email") == [("email", email)]


@pytest.mark.parametrize(("text", "ip"), [
    ("server 8.6.12.139 responded", "8.6.12.139"),
    ("dev 8.6.12.139", "8.6.12.139"),
    ("peer=1.2.3.44", "1.2.3.44"),
    ("resolved to 9.9.9.9", "9.9.9.9"),
])
def test_short_octet_ipv4_addresses(classifier: Classifier, text: str, ip: str) -> None:
    assert found(classifier, text, "ip_address") == [("ip_address", ip)]


@pytest.mark.parametrize("text", [
    "v1.2.3.4", "running v1.2.3.4 now", "version 1.2.3.4", "Version: 8.6.12.139",
    "ver. 2.0.1.7", "firmware 4.1.0.22", "build 1.0.0.3", "rev 3.2.1.9",
])
def test_version_strings_are_not_addresses(classifier: Classifier, text: str) -> None:
    assert found(classifier, text, "ip_address") == []


def test_json_escapes_are_decoded_with_original_offsets(classifier: Classifier) -> None:
    text = ('{"user": "john\\u002edoe@corp.net", "db": "postgres:\\/\\/app:Tr0ub4dor@db.corp'
            '.net\\/x", "card": "4111\\u00201111\\u00201111\\u00201111"}')
    result = classifier.scan_text(text)
    assert [(f.type, text[f.start:f.end]) for f in result.findings] == [
        ("email", "john\\u002edoe@corp.net"),
        ("password_in_url", "Tr0ub4dor"),
        ("credit_card", "4111\\u00201111\\u00201111\\u00201111"),
    ]
    assert result.findings[0].preview == "j***@corp.net"


def test_html_entities_are_decoded_with_original_offsets(classifier: Classifier) -> None:
    text = ("<p>Write to jane&#46;roe&#x40;corp.net or call &#43;44 20 7946 0958.</p>"
            "<a href='https://x.corp.net/?a=1&amp;b=2'>x</a> &lt;8.6.12.139&gt;")
    assert found(classifier, text) == [
        ("email", "jane&#46;roe&#x40;corp.net"),
        ("phone_number", "&#43;44 20 7946 0958"),
        ("ip_address", "8.6.12.139"),
    ]


def test_escaped_private_key_in_json(classifier: Classifier) -> None:
    body = "MIIEpAIBAAKCAQEA7bq3Xv9" + "Qm4Hk2Rz8LpT1Wc6YdNf0JsAe5Gu" * 3
    text = ('{"private_key": "-----BEGIN RSA PRIVATE KEY-----\\n' + body
            + '\\n-----END RSA PRIVATE KEY-----\\n"}')
    [(kind, value)] = found(classifier, text)
    assert kind == "private_key" and value.startswith("-----BEGIN") and value.endswith("KEY-----")


def test_url_password_templates_are_not_passwords(classifier: Classifier) -> None:
    for text in ("postgres://app:${DB_PASSWORD}@db.corp.net/x", "redis://:$REDIS_PASS@c.corp.net",
                 "amqp://u:{{ mq_password }}@mq.corp.net", "ftp://u:<password>@f.corp.net",
                 "mysql://u:%(password)s@db.corp.net"):
        assert found(classifier, text, "password_in_url") == [], text


def test_escape_decoding_can_be_switched_off() -> None:
    text = '{"user": "john\\u002edoe@corp.net"}'
    # without decoding, the escape's hex digits read as part of the local part
    assert found(Classifier(decode_escapes=False), text, "email") == [
        ("email", "u002edoe@corp.net")]
