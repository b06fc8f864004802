"""Links inside one archive, judged once all of its member names are known.

Links are never followed (no member is ever written to disk); they are findings
because an extractor downstream would create them. A link whose target provably stays
inside the archive is harmless to extract and common in packages (``libfoo.so ->
libfoo.so.1``, ``../../share/x``): it is reported at low severity, so that it does not
make a package suspicious. Any other link stays medium:

* the target is unknown (zip and 7z keep it as the member's content, which is not read),
  empty, or absolute (``/etc``, ``C:\\``);
* the target climbs above the archive's root from the link's directory, or climbs after
  descending (``a/../..``): only ``../`` at its start, then names, is judged, since a
  ``..`` after a name that is itself a link resolves from that link's target, not from
  where the name suggests;
* a hard link names anything but a path from the archive's root without ``..``;
* the archive was not read to its end (a limit or a corrupt header stopped it), so
  other members could change the answer;
* some member of the archive is written through a symbolic link of the same archive
  (``a -> /etc`` then ``a/cron.d/x``), or has the same name as one (an extractor that
  opens the name follows the link): that member is a high-severity finding of its own
  (``archive.through_symlink``, the construction that makes an extractor write outside
  its directory, as in CVE-2007-4559 and its successors), and no link of that archive
  is judged harmless. Order is not considered: a member before the link is flagged too.

Why that is enough: with no member written through a link, every link sits in a real
directory at the depth its name says; a target that only climbs at its start and stays
under the root then ends inside, and any link it passes through on the way down is
judged by the same rule, so no chain of links leads out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from secops.scanning.models import Finding, Severity

SYMLINK, HARDLINK = "symlink", "hardlink"
_DRIVE = re.compile(r"[A-Za-z]:")


def _parts(path: str) -> list[str]:
    """A member path's components: backslashes count as separators (Windows
    extractors treat them so), and empty and ``.`` components are dropped."""
    return [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]


def _absolute(path: str) -> bool:
    normal = path.replace("\\", "/")
    return normal.startswith("/") or _DRIVE.match(normal) is not None


def stays_inside(name: str, target: str, kind: str) -> bool:
    """Whether a link named ``name`` to ``target`` ends inside the archive, judged by
    its text alone (see the module's rules)."""
    if not target or _absolute(target):
        return False
    parts = _parts(target)
    climbs = 0
    while climbs < len(parts) and parts[climbs] == "..":
        climbs += 1
    if ".." in parts[climbs:]:
        return False
    if kind == HARDLINK:
        return climbs == 0  # a hard link names a member from the archive's root
    own = _parts(name)
    # The link's own directory is its depth (a name with ``..`` is judged by nobody).
    return ".." not in own and climbs <= len(own) - 1


@dataclass
class _Link:
    name: str
    target: str | None
    kind: str
    location: str
    index: int  # its place among the archive's members


@dataclass
class ArchiveLinks:
    """Collects one archive's member names and links; :meth:`findings` judges them."""

    names: list[tuple[str, str]] = field(default_factory=list)  # (name, location)
    links: list[_Link] = field(default_factory=list)
    complete: bool = False  # set when the archive was read to its end

    def member(self, name: str, location: str) -> None:
        self.names.append((name, location))

    def link(self, name: str, target: str | None, kind: str, location: str) -> None:
        """Record the member just passed to :meth:`member` as a link."""
        self.links.append(_Link(name, target, kind, location, len(self.names) - 1))

    def findings(self) -> list[Finding]:
        if not self.links:
            return []
        symlinks = {"/".join(_parts(link.name)) for link in self.links if link.kind == SYMLINK}
        out = self._written_through(symlinks) if symlinks else []
        judged = self.complete and not out
        return out + [self._judge(link, judged) for link in self.links]

    def _written_through(self, symlinks: set[str]) -> list[Finding]:
        links_at = {link.index for link in self.links}
        out = []
        for index, (name, location) in enumerate(self.names):
            parts = _parts(name)
            # Its directories, and its own name unless this member is a link itself.
            depth = len(parts) if index in links_at else len(parts) + 1
            through = next((prefix for prefix in ("/".join(parts[:i]) for i in range(1, depth))
                            if prefix in symlinks), None)
            if through is not None:
                out.append(Finding("archive.through_symlink", Severity.HIGH,
                                   f"member's path passes through the symbolic link {through!r} "
                                   "of the same archive", location))
        return out

    @staticmethod
    def _judge(link: _Link, judged: bool) -> Finding:
        fid = f"archive.{link.kind}"
        what = "symbolic link" if link.kind == SYMLINK else "hard link"
        if link.target is None:
            return Finding(fid, Severity.MEDIUM, f"member is a {what}", link.location)
        text = f"member is a {what} to {link.target!r}"
        if judged and stays_inside(link.name, link.target, link.kind):
            return Finding(fid, Severity.LOW, f"{text}, inside the archive", link.location)
        return Finding(fid, Severity.MEDIUM, text, link.location)
