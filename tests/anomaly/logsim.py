"""A labelled simulator of a day of logs: background traffic, noise and injected attacks.

Written from descriptions of how the systems are used and attacked, not from the rules:

* background, on a diurnal curve (quiet at night, peak in the afternoon): employees
  logging in to a web portal (JSON lines) from a shared office NAT or from the home
  addresses their 30-day baseline already knows, some mistyping a password once; admins
  opening SSH sessions with keys and running sudo, sometimes mistyping the sudo
  password once; visitors browsing the website (pages, assets, a few stale links that
  404); crawlers; a CI client polling the API that the rate limiter refuses a few times
  an hour; internet SSH scanners, each trying a few common account names and moving on;
  users downloading reports; cron and systemd lines.
* attacks, each labelled with its family, the entities it involves and its time span:
  SSH brute force (one address, fast or patient), a distributed attack on one account,
  password spraying, credential stuffing from a botnet, API floods refused by the rate
  limiter, directory brute forcing and vulnerability scanning, sudo password guessing by
  a compromised account, credentials written to logs, logins from an attacker's address
  with stolen credentials, and GDPR access requests (informational events).

The history days before the scored day hold background only; the detector learns from
them as a deployment learns from the history it keeps. ``simulate(seed)`` writes nothing;
``Day.write(folder)`` writes ``auth.log``, ``access.log``, ``portal.jsonl`` and
``baseline.json``.
"""

from __future__ import annotations

import json
import math
import os
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

DAY0 = datetime(2026, 12, 7, tzinfo=UTC).timestamp()
DAY = 86400.0
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SCANNER_NAMES = ("root", "admin", "ubuntu", "test", "oracle", "postgres", "git", "user", "pi",
                 "ftp", "guest", "deploy", "support", "mysql", "hadoop")
SITE_PAGES = ("/", "/about", "/pricing", "/blog", "/blog/2026/winter-release", "/docs",
              "/docs/install", "/docs/api", "/contact", "/careers", "/login", "/signup")
ASSETS = ("/static/app.js", "/static/app.css", "/static/logo.svg", "/favicon.ico")
STALE = ("/blog/2019/old-post", "/docs/v1/install", "/promo-2021", "/team/ex-member",
         "/downloads/old-client.zip")
SCAN_WORDS = ("admin", "backup", "wp-admin", "wp-login.php", ".env", ".git/config", "phpmyadmin",
              "config.php", "server-status", "cgi-bin/test.cgi", "actuator/health", "api/v1/debug",
              "old", "test", "dev", "staging", "uploads", "db.sql", "dump.sql", "shell.php",
              "vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "solr/admin", "jenkins",
              "manager/html", "console", "xmlrpc.php", "login.action", "owa/auth/logon.aspx")
AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15",
          "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")


@dataclass
class Incident:
    family: str
    entities: set[tuple[str, str]]
    start: float
    end: float


@dataclass
class Day:
    seed: int
    auth: list[tuple[float, str]] = field(default_factory=list)
    access: list[tuple[float, str]] = field(default_factory=list)
    portal: list[tuple[float, str]] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    baseline: dict[str, list[str]] = field(default_factory=dict)

    def write(self, folder: Path) -> list[str]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, lines in (("auth.log", self.auth), ("access.log", self.access),
                            ("portal.jsonl", self.portal)):
            path = folder / name
            with path.open("w") as fh:
                for _, line in sorted(lines, key=lambda x: x[0]):
                    fh.write(line + "\n")
            os.utime(path, (DAY0 + DAY, DAY0 + DAY))
            paths.append(str(path))
        (folder / "baseline.json").write_text(json.dumps(self.baseline))
        return paths

    @property
    def lines(self) -> int:
        return len(self.auth) + len(self.access) + len(self.portal)


def diurnal(t: float) -> float:
    """Relative activity at time ``t`` (1.0 at the mid-afternoon peak, about 0.08 at 4 am)."""
    hour = (t - DAY0) % DAY / 3600
    work = math.exp(-((hour - 14.5) / 3.8) ** 2)
    evening = 0.35 * math.exp(-((hour - 20.5) / 2.0) ** 2)
    return min(1.0, 0.07 + work + evening)


class Sim:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.day = Day(seed)
        r = self.rng
        self.host = "web1"
        self.office_nat = f"192.0.2.{r.randint(100, 250)}"
        self.employees = [f"{n}{i}" for i, n in enumerate(
            r.choices(("anna", "ben", "chen", "dara", "eli", "fay", "gus", "hana", "ivan", "jo"), k=90))]
        self.admins = self.employees[:12]
        self.home_ips = {u: [self._ip("home") for _ in range(r.randint(1, 3))] for u in self.employees}
        self.day.baseline = {u: [self.office_nat, *ips] for u, ips in self.home_ips.items()}
        self.pid = 1000
        self.day0 = DAY0

    # -- helpers ------------------------------------------------------------------------

    def _ip(self, kind: str) -> str:
        r = self.rng
        if kind == "home":
            first = r.choice((81, 86, 90, 93, 109, 151))
        elif kind == "attacker":
            first = r.choice((45, 103, 185, 193, 194))
        else:
            first = r.randint(11, 223)
        return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def times(self, n: int, curve: bool = True) -> list[float]:
        """``n`` times over the day, following the diurnal curve (or uniform)."""
        out: list[float] = []
        while len(out) < n:
            t = self.day0 + self.rng.random() * DAY
            if not curve or self.rng.random() < diurnal(t):
                out.append(t)
        return sorted(out)

    def syslog(self, t: float, prog: str, msg: str, host: str | None = None) -> None:
        when = datetime.fromtimestamp(t, UTC)
        self.pid += 1
        stamp = f"{MONTHS[when.month - 1]} {when.day:>2} {when:%H:%M:%S}"
        self.day.auth.append((t, f"{stamp} {host or self.host} {prog}[{self.pid}]: {msg}"))

    def ssh_fail(self, t: float, user: str, ip: str, invalid: bool = False) -> None:
        who = f"invalid user {user}" if invalid else user
        if invalid:
            self.syslog(t, "sshd", f"Invalid user {user} from {ip} port {self.rng.randint(1024, 65535)}")
        port = self.rng.randint(1024, 65535)
        self.syslog(t, "sshd", f"Failed password for {who} from {ip} port {port} ssh2")

    def ssh_ok(self, t: float, user: str, ip: str, how: str = "publickey") -> None:
        port = self.rng.randint(1024, 65535)
        self.syslog(t, "sshd", f"Accepted {how} for {user} from {ip} port {port} ssh2")

    def http(self, t: float, ip: str, path: str, status: int, *, method: str = "GET",
             size: int | None = None, agent: str | None = None, query: str = "") -> None:
        when = datetime.fromtimestamp(t, UTC)
        stamp = f"{when.day:02d}/{MONTHS[when.month - 1]}/{when.year}:{when:%H:%M:%S} +0000"
        size = size if size is not None else self.rng.randint(200, 40000)
        agent = agent or self.rng.choice(AGENTS)
        self.day.access.append((t, f'{ip} - - [{stamp}] "{method} {path}{query} HTTP/1.1" {status} '
                                   f'{size} "-" "{agent}"'))

    def portal(self, t: float, event: str, **fields: object) -> None:
        record = {"ts": datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")
                  .replace("+00:00", "Z"), "event": event, "service": "portal", "host": "app1", **fields}
        self.day.portal.append((t, json.dumps(record)))

    def label(self, family: str, entities: set[tuple[str, str]], start: float, end: float) -> None:
        self.day.incidents.append(Incident(family, entities, start, end))

    def slot(self, length: float) -> float:
        """A start time for an attack of ``length`` seconds, away from the day's edges."""
        return DAY0 + 1800 + self.rng.random() * (DAY - 3600 - length)

    # -- background -----------------------------------------------------------------------

    def background(self) -> None:
        r = self.rng
        for user in self.employees:   # portal logins, from the office or from home
            for t in self.times(r.randint(1, 4)):
                ip = self.office_nat if r.random() < 0.6 else r.choice(self.home_ips[user])
                if r.random() < 0.06:   # a typo, then the right password
                    self.portal(t, "login", user=user, ip=ip, success=False, role="staff")
                    t += r.uniform(3, 20)
                self.portal(t, "login", user=user, ip=ip, success=True, role="staff", mfa=True)
                for _ in range(r.randint(0, 3)):
                    t += r.uniform(60, 3000)
                    self.portal(t, "download", user=user, ip=ip, bytes=r.randint(10_000, 5_000_000),
                                file=f"reports/{r.randint(1, 400)}.pdf")
        for admin in self.admins:   # SSH with keys, sudo with the odd typo
            for t in self.times(r.randint(2, 8)):
                ip = self.office_nat if r.random() < 0.5 else r.choice(self.home_ips[admin])
                self.ssh_ok(t, admin, ip)
                for _ in range(r.randint(0, 6)):
                    t += r.uniform(20, 900)
                    if r.random() < 0.05:
                        self.syslog(t, "sudo", "pam_unix(sudo:auth): authentication failure; "
                                    f"logname={admin} uid=1000 euid=0 tty=/dev/pts/0 ruser={admin} "
                                    f"rhost=  user={admin}")
                        t += r.uniform(2, 10)
                    self.syslog(t, "sudo", f"    {admin} : TTY=pts/0 ; PWD=/home/{admin} ; USER=root ; "
                                f"COMMAND=/usr/bin/systemctl restart {r.choice(('nginx', 'app', 'cron'))}")
        for t in self.times(r.randint(250, 450), curve=False):   # internet SSH scanners
            ip = self._ip("scanner")
            for _ in range(r.randint(1, 4)):
                name = r.choice(SCANNER_NAMES)
                self.ssh_fail(t, name, ip, invalid=name not in ("root",))
                t += r.uniform(1, 8)
        for t in self.times(r.randint(600, 900), curve=False):
            self.syslog(t, "CRON", "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)")
        visitors = [self._ip("visitor") for _ in range(2500)]
        for t in self.times(r.randint(25_000, 35_000)):   # website visitors
            ip = r.choice(visitors)
            if r.random() < 0.012:
                self.http(t, ip, r.choice(STALE), 404, size=153)
                continue
            self.http(t, ip, r.choice(SITE_PAGES), r.choice((200, 200, 200, 304)))
            for asset in r.sample(ASSETS, r.randint(0, 3)):
                self.http(t + r.uniform(0.05, 1), ip, asset, 200)
        for bot in (self._ip("crawler") for _ in range(4)):   # crawlers, a few dead links each
            for t in self.times(r.randint(300, 900), curve=False):
                dead = r.random() < 0.02
                self.http(t, bot, r.choice(STALE + SITE_PAGES) if dead else r.choice(SITE_PAGES),
                          404 if dead else 200, agent="Mozilla/5.0 (compatible; Googlebot/2.1)")
        for t in self.times(r.randint(60, 150)):   # the application's everyday errors
            template = r.choice((
                "database timeout after {n} ms on query {q}", "upstream {ip} refused connection",
                "mail delivery to {u}@example.org deferred: 451 try again later",
                "session {h} expired for user {u}"))
            message = template.format(n=r.randint(500, 30000), q=r.randint(1, 40), ip=self._ip("lan"),
                                      u=r.choice(self.employees), h=f"{r.getrandbits(64):016x}")
            self.portal(t, "app_error", level="error", message=message)
        for t in self.times(r.randint(20, 80)):   # the reverse proxy's upstream timeouts
            self.http(t, r.choice(visitors), r.choice(("/api/v1/builds", "/docs/api")),
                      r.choice((502, 504)), size=0)
        for t in self.times(r.randint(100, 300), curve=False):   # sshd's own noise about scanners
            self.syslog(t, "sshd", f"error: kex_exchange_identification: Connection closed by remote "
                        f"host {self._ip('scanner')} port {r.randint(1024, 65535)}")
        ci = self._ip("ci")
        t = self.day0 + r.uniform(0, 30)
        while t < self.day0 + DAY:   # CI polling the API, refused now and then
            burst = r.random() < 0.012
            for _ in range(r.randint(1, 3) if burst else 1):
                self.http(t, ci, "/api/v1/builds", 429 if burst else 200, size=90, agent="ci-runner/2.4")
                t += r.uniform(0.5, 2)
            t += r.uniform(20, 40)

    # -- attacks -------------------------------------------------------------------------

    def ssh_brute_force(self) -> None:
        r = self.rng
        ip = self._ip("attacker")
        users = (["root"] if r.random() < 0.6
                 else r.sample(["root", "admin", *self.admins[:3]], r.randint(1, 3)))
        attempts, pace = r.randint(20, 400), r.choice((r.uniform(0.5, 4), r.uniform(8, 40)))
        t = start = self.slot(attempts * pace)
        for _ in range(attempts):
            user = r.choice(users)
            self.ssh_fail(t, user, ip, invalid=user == "admin")
            t += r.expovariate(1 / pace)
        self.label("brute_force", {("ip", ip), *(("user", u) for u in users)}, start, t)

    def distributed_attack_on_account(self) -> None:
        r = self.rng
        target = r.choice(self.admins)
        t = start = self.slot(1800)
        for _ in range(r.randint(10, 40)):
            ip = self._ip("attacker")
            for _ in range(r.randint(1, 3)):
                self.ssh_fail(t, target, ip)
                t += r.uniform(2, 15)
            t += r.uniform(5, 60)
        self.label("brute_force", {("user", target), ("endpoint", f"sshd@{self.host}")}, start, t)

    def password_spraying(self) -> None:
        r = self.rng
        ip = self._ip("attacker")
        targets = r.sample(self.employees, r.randint(15, 60))
        t = start = self.slot(3600)
        spacing = r.uniform(10, 90)
        for user in targets:
            self.portal(t, "login", user=user, ip=ip, success=False)
            t += r.uniform(0.5, 2) * spacing
        self.label("password_spraying", {("ip", ip)}, start, t)

    def credential_stuffing(self) -> None:
        """A botnet of residential proxies: each address tries a few leaked pairs and rotates."""
        r = self.rng
        start = self.slot(2700)
        length = r.uniform(900, 2700)
        hit_rate = r.uniform(0.005, 0.03)
        entities = {("endpoint", "portal@app1")}
        end = start
        for _ in range(r.randint(100, 600)):
            ip = self._ip("bot")
            t = start + r.random() * length
            for _ in range(r.randint(1, 5)):
                leaked = r.choice(self.employees) if r.random() < 0.3 else \
                    "".join(r.choices(string.ascii_lowercase, k=r.randint(5, 10))) + str(r.randint(1, 99))
                success = r.random() < hit_rate
                self.portal(t, "login", user=leaked, ip=ip, success=success)
                if success or leaked in self.employees:   # a real account attacked or taken
                    entities.add(("user", leaked))
                end = max(end, t)
                t += r.uniform(1, 20)
        self.label("credential_stuffing", entities, start, end)

    def api_flood(self) -> None:
        r = self.rng
        ip = self._ip("attacker")
        t = start = self.slot(600)
        end = t + r.uniform(120, 600)
        rate = r.uniform(5, 30)
        while t < end:
            self.http(t, ip, "/api/v1/search", 429 if r.random() < 0.9 else 200, size=60,
                      agent="python-requests/2.31")
            t += r.expovariate(rate)
        self.label("rate_limit_abuse", {("ip", ip), ("endpoint", "/api/v1/search")}, start, t)

    def web_scan(self) -> None:
        r = self.rng
        ip = self._ip("attacker")
        fast = r.random() < 0.5
        count = r.randint(200, 3000) if fast else r.randint(60, 250)
        t = start = self.slot(count * (0.1 if fast else 3))
        words = list(SCAN_WORDS) + [
            f"{w}{suffix}" for w in ("backup", "admin", "old", "test", "api", "data")
            for suffix in ("", ".zip", ".tar.gz", ".bak", "1", "2", "_old", ".php")]
        for _ in range(count):
            path = "/" + r.choice(words) + (f"/{r.choice(words)}" if r.random() < 0.5 else "")
            self.http(t, ip, path, 404 if r.random() < 0.97 else 403, size=153,
                      agent="gobuster/3.6" if fast else "Mozilla/5.00 (Nikto/2.5.0)")
            t += r.expovariate(r.uniform(5, 50) if fast else 1 / r.uniform(1, 5))
        self.label("scanning", {("ip", ip)}, start, t)

    def sudo_guessing(self) -> None:
        r = self.rng
        victim = r.choice(self.employees[12:])
        t = start = self.slot(900)
        self.ssh_ok(t, victim, self._ip("attacker"), how="password")
        for _ in range(r.randint(5, 25)):
            t += r.uniform(3, 30)
            self.syslog(t, "sudo", "pam_unix(sudo:auth): authentication failure; logname="
                        f"{victim} uid=1001 euid=0 tty=/dev/pts/3 ruser={victim} rhost=  user={victim}")
        self.syslog(t + 1, "sudo", f"   {victim} : 3 incorrect password attempts ; TTY=pts/3 ; "
                    f"PWD=/home/{victim} ; USER=root ; COMMAND=/bin/bash")
        self.label("sudo_abuse", {("user", victim)}, start, t)

    def secret_in_log(self) -> None:
        r = self.rng
        t = self.slot(60)
        token = "ghp_" + "".join(r.choices(string.ascii_letters + string.digits, k=36))
        if r.random() < 0.5:
            self.http(t, r.choice(self.home_ips[r.choice(self.employees)]), "/api/v1/webhook", 200,
                      method="POST", query=f"?access_token={token}")
            self.label("secret_in_log", {("endpoint", "/api/v1/webhook")}, t, t)
        else:
            self.portal(t, "integration_error", message=f"push failed with token {token}",
                        user=r.choice(self.employees))
            self.label("secret_in_log", {("endpoint", "portal@app1")}, t, t)

    def stolen_credentials(self) -> None:
        r = self.rng
        victim = r.choice(self.employees)
        ip = self._ip("attacker")
        t = self.slot(600)
        self.portal(t, "login", user=victim, ip=ip, success=True, role="staff", mfa=False)
        self.portal(t + r.uniform(30, 300), "download", user=victim, ip=ip,
                    bytes=r.randint(50_000_000, 900_000_000), file="exports/customers.csv")
        self.label("first_seen", {("user", victim)}, t, t)

    def bulk_download(self) -> None:
        """An insider (known address, valid session) pulling far more reports than anyone."""
        r = self.rng
        user = r.choice(self.employees)
        ip = r.choice(self.home_ips[user])
        t = start = self.slot(7200)
        self.portal(t, "login", user=user, ip=ip, success=True, role="staff", mfa=True)
        end = t + r.uniform(1800, 7200)
        total, goal = 0, r.uniform(3e8, 5e9)
        while total < goal and t < end:
            t += r.uniform(5, 60)
            size = r.randint(5_000_000, 50_000_000)
            total += size
            self.portal(t, "download", user=user, ip=ip, bytes=size, file=f"reports/{r.randint(1, 4000)}.pdf")
        self.label("exfiltration", {("user", user)}, start, t)

    def scraping(self) -> None:
        """Many addresses scraping one documentation page far faster than people read it."""
        r = self.rng
        page = r.choice(("/docs/api", "/pricing", "/blog"))
        ips = [self._ip("bot") for _ in range(r.randint(20, 100))]
        t = start = self.slot(1800)
        end = t + r.uniform(600, 1800)
        rate = r.uniform(2, 20)
        while t < end:
            self.http(t, r.choice(ips), page, 200, agent="Mozilla/5.0 (compatible; scraper)")
            t += r.expovariate(rate)
        self.label("rate_spike", {("endpoint", page)}, start, t)

    def new_error(self) -> None:
        """A fault never seen before (a crash after a bad deploy, a full disk, the OOM killer)."""
        r = self.rng
        if not hasattr(self, "faults"):
            self.faults = r.sample(range(5), 5)
        fault = self.faults.pop()
        t = start = self.slot(3600)
        for _ in range(r.randint(1, 20)):
            pid = r.randint(1000, 99999)
            if fault == 0:
                self.portal(t, "app_error", level="critical", message="panic: runtime error: invalid "
                            f"memory address or nil pointer dereference in export worker {r.randint(1, 8)}")
            elif fault == 1:
                self.portal(t, "app_error", level="error", message=f"could not write /var/lib/portal/"
                            f"uploads/{r.getrandbits(32):08x}: No space left on device")
            elif fault == 2:
                self.syslog(t, "kernel", f"app[{pid}]: segfault at {r.getrandbits(32):x} ip "
                            f"{r.getrandbits(48):012x} sp {r.getrandbits(48):012x} error 4 in libcrypto.so.3")
            elif fault == 3:
                self.syslog(t, "kernel", f"Out of memory: Killed process {pid} (java) total-vm:"
                            f"{r.randint(10**6, 10**7)}kB, anon-rss:{r.randint(10**6, 10**7)}kB")
            else:
                self.syslog(t, "sshd", f"fatal: mm_answer_sign: sign: error in libcrypto [preauth] "
                            f"pid {pid}")
            t += r.uniform(5, 120)
        entity = "portal@app1" if fault < 2 else ("sshd@web1" if fault == 4 else "kernel@web1")
        self.label("rare_template", {("endpoint", entity)}, start, t)

    def gdpr_request(self) -> None:
        r = self.rng
        user = r.choice(self.employees)
        t = self.slot(60)
        self.portal(t, "gdpr_access_request", user=user, ip=r.choice(self.home_ips[user]))
        self.label("gdpr_request", {("user", user)}, t, t)


ATTACKS = ("ssh_brute_force", "distributed_attack_on_account", "password_spraying",
           "credential_stuffing", "api_flood", "web_scan", "sudo_guessing", "secret_in_log",
           "stolen_credentials", "gdpr_request", "bulk_download", "scraping", "new_error")


def simulate(seed: int, *, per_family: int = 2, history_days: int = 0) -> Day:
    """One labelled day: background plus ``per_family`` attacks of each kind, after
    ``history_days`` days of background alone (the history baselines learn from)."""
    sim = Sim(seed)
    for back in range(history_days, 0, -1):
        sim.day0 = DAY0 - back * DAY
        sim.background()
    sim.day0 = DAY0
    sim.background()
    for name in ATTACKS:
        for _ in range(per_family):
            getattr(sim, name)()
    return sim.day
