"""Every relative link in the project's Markdown pages resolves: the file or folder exists, and a #fragment
into a Markdown page names one of its headings (as GitHub makes anchors of them). Links to other sites are
not followed: lint runs offline.

Usage: python scripts/check_links.py [page.md …]   (default: README.md, docs/*.md, bench/*.md)
"""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/*.md", "bench/*.md"]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+).*?\1")
# [text](target) and ![alt](target); the target ends at the first space (a title may follow) or ')'.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, CODE_SPAN.sub("", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, links reduced to their words, lower case, without
    punctuation but for hyphens and underscores, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(page: Path) -> set:
    found, seen = set(), {}
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = not fenced and HEADING.match(line)
        if match:
            base = slug(match.group(1))
            # GitHub numbers a repeated heading's anchor: name, name-1, name-2, …
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def problems(page: Path, cache: dict):
    for number, line in prose_lines(page.read_text()):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # https:, mailto: and the like: another site
            path, _, fragment = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO)}:{number}: {target}"
            if not resolved.exists():
                yield f"{where}: no such file {resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else resolved}"
            elif fragment and resolved.suffix == ".md":
                if resolved not in cache:
                    cache[resolved] = anchors(resolved)
                if fragment not in cache[resolved]:
                    yield f"{where}: {resolved.relative_to(REPO)} has no heading with anchor #{fragment}"


def main(arguments) -> int:
    pages = [Path(a).resolve() for a in arguments] or sorted(p for g in PAGES for p in REPO.glob(g))
    cache = {}
    found = [problem for page in pages for problem in problems(page, cache)]
    for problem in found:
        print(f"check_links: {problem}", file=sys.stderr)
    if found:
        print(f"check_links: {len(found)} broken links: fix the target or the heading it names", file=sys.stderr)
        return 1
    print(f"check_links: every relative link resolves ({len(pages)} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
