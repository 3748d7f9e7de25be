"""What the shared objects of a Lambda package need from the operating system's C library.

A Lambda runtime runs on a fixed OS with a fixed glibc: python3.11 on Amazon Linux 2 (glibc 2.26),
python3.12 and later on Amazon Linux 2023 (glibc 2.34), see ``contract.json``'s ``lambda_runtimes``.
A wheel built for a newer glibc installs anywhere and fails only when Lambda imports it
(``Runtime.ImportModuleError: ... version `GLIBC_2.28' not found``), so the build and the local data
plane read every ELF object's version needs (its ``.gnu.version_r`` section, with pyelftools) and
refuse what the runtime's OS cannot load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

_ELF_MAGIC = b"\x7fELF"
_GLIBC = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")


@total_ordering
@dataclass(frozen=True)
class GlibcVersion:
    """A glibc release such as 2.26."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> GlibcVersion:
        """``2.34`` (or a symbol version such as ``GLIBC_2.2.5``) as a version."""
        match = _GLIBC.match(text if text.startswith("GLIBC_") else f"GLIBC_{text}")
        if match is None:
            raise ValueError(f"not a glibc version: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, GlibcVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class GlibcNeed:
    """The newest glibc symbol version one ELF object needs."""

    path: str  # relative to the scanned folder
    version: GlibcVersion


@dataclass(frozen=True)
class GlibcReport:
    """The ELF objects under a folder and the newest glibc each needs."""

    objects: int  # ELF files scanned
    needs: tuple[GlibcNeed, ...]  # those with any GLIBC_ version need, sorted by path

    @property
    def highest(self) -> GlibcNeed | None:
        """The object that needs the newest glibc (None when nothing needs glibc)."""
        return max(self.needs, key=lambda n: n.version, default=None)

    def too_new_for(self, available: GlibcVersion) -> list[GlibcNeed]:
        """Objects that need a newer glibc than ``available``."""
        return [need for need in self.needs if need.version > available]


def required_glibc(path: Path) -> GlibcVersion | None:
    """The newest ``GLIBC_x.y`` symbol version an ELF file needs; None if it is not ELF or needs none."""
    with path.open("rb") as handle:
        if handle.read(4) != _ELF_MAGIC:
            return None
        handle.seek(0)
        try:
            elf = ELFFile(handle)
            versions = [
                GlibcVersion.parse(aux.name)
                for section in elf.iter_sections()
                if isinstance(section, GNUVerNeedSection)
                for _, auxiliaries in section.iter_versions()
                for aux in auxiliaries
                if _GLIBC.match(aux.name)
            ]
        except ELFError:
            return None
    return max(versions, default=None)


def _files(root: Path) -> Iterable[Path]:
    return (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def scan(root: Path) -> GlibcReport:
    """Every ELF object under ``root`` and the newest glibc it needs."""
    objects, needs = 0, []
    for path in _files(root):
        with path.open("rb") as handle:
            if handle.read(4) != _ELF_MAGIC:
                continue
        objects += 1
        version = required_glibc(path)
        if version is not None:
            needs.append(GlibcNeed(path.relative_to(root).as_posix(), version))
    return GlibcReport(objects, tuple(sorted(needs, key=lambda n: n.path)))


class GlibcTooNew(RuntimeError):
    """A package holds shared objects that the runtime's OS cannot load."""

    def __init__(
        self, what: str, runtime: str, os_name: str, available: GlibcVersion, needs: list[GlibcNeed]
    ):
        worst = max(needs, key=lambda n: n.version)
        listed = ", ".join(f"{n.path} (GLIBC_{n.version})" for n in needs[:5])
        more = f" and {len(needs) - 5} more" if len(needs) > 5 else ""
        super().__init__(
            f"{what}: {len(needs)} shared objects need a newer glibc than {runtime} provides "
            f"({os_name}, glibc {available}); Lambda would fail to import them "
            f"(`GLIBC_{worst.version}' not found): {listed}{more}"
        )
        self.needs = needs
