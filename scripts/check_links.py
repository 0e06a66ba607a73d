#!/usr/bin/env python3
"""Checks the project's references to its own files (standard library only).

1. Every relative link in every tracked Markdown file (`git ls-files '*.md'`)
   points at a file or folder that exists; a `#fragment` into a Markdown file
   names one of its headings, by GitHub's rules for heading anchors.
2. Every `*.md` path named in src/, web/src/, scripts/, examples/ and the
   Makefile (comments, strings, help text) exists, relative to the repository
   root or to the file that names it.

Each broken reference is printed as `path:line: what`; the exit status is 1 if
there is any, else 0. External links (http, https, mailto, ...) are not
followed. Run from anywhere: `python3 scripts/check_links.py`.
"""

import os
import re
import subprocess
import sys
import unicodedata

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# Where code and scripts may name Markdown files.
CODE_PLACES = ["src", "web/src", "scripts", "examples", "Makefile"]
CODE_SUFFIXES = (".rs", ".py", ".sh", ".js", ".html", ".toml", ".wgsl")

# Names that look like paths but are not paths into this repository, with why.
# (file, name): reason.
NOT_PATHS = {
    ("scripts/gpu-check.sh", "summary.md"): "a file the script writes into its output folder",
    ("scripts/bench_report.py", "levers.md"): "joined with benches/ in the code",
    ("scripts/bench_report.py", "distributed.md"): "joined with benches/ in the code",
    ("scripts/bench_report.py", "precision.md"): "joined with benches/ in the code",
    ("scripts/bench_report.py", "foreign.md"): "joined with benches/ in the code",
}

FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target) and ![alt](target); the target may be <...> and may carry a title.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ATTR = re.compile(r"""<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.I)
HTML_ID = re.compile(r"""<[a-z]+\b[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.I)
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
MD_PATH = re.compile(r"[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b")


def tracked(pattern=None):
    """Tracked files (optionally matching a git pathspec), relative to the root."""
    args = ["git", "-C", ROOT, "ls-files", "-z"]
    if pattern:
        args.append(pattern)
    out = subprocess.run(args, check=True, capture_output=True).stdout
    return [p for p in out.decode("utf-8").split("\0") if p]


def slug(text):
    """GitHub's anchor for a heading: its text without markup, lowercased, every
    character but letters, digits, spaces, `-` and `_` dropped, spaces to `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "-_" or cat[0] in "LN" or cat == "Mn":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


def anchors(path, cache={}):
    """Every anchor a Markdown file defines: its headings' slugs (a repeated slug
    gets -1, -2, ...) and the ids and names of its HTML elements."""
    if path in cache:
        return cache[path]
    found = set()
    counts = {}
    in_fence = False
    prev = ""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        if FENCE.match(line):
            in_fence = not in_fence
            prev = ""
            continue
        if in_fence:
            continue
        text = None
        m = HEADING.match(line)
        if m:
            text = m.group(2)
        elif SETEXT.match(line) and prev.strip() and not prev.lstrip().startswith(("-", "*", "|", ">")):
            text = prev.strip()
        if text is not None:
            s = slug(text)
            n = counts.get(s, 0)
            found.add(s if n == 0 else f"{s}-{n}")
            counts[s] = n + 1
        for m in HTML_ID.finditer(line):
            found.add(m.group(1))
        prev = line
    cache[path] = found
    return found


def check_target(src, lineno, target, problems):
    """One link target found at src:lineno (src relative to the root)."""
    target = target.strip()
    if target.startswith("<") and target.endswith(">"):
        target = target[1:-1]
    if not target or SCHEME.match(target) or target.startswith("//"):
        return
    path, _, fragment = target.partition("#")
    path = path.split("?", 1)[0]
    if path:
        from urllib.parse import unquote

        path = unquote(path)
        if path.startswith("/"):
            full = os.path.join(ROOT, path.lstrip("/"))
        else:
            full = os.path.normpath(os.path.join(ROOT, os.path.dirname(src), path))
        if not os.path.exists(full):
            problems.append(f"{src}:{lineno}: link to {target}: no such file")
            return
    else:
        full = os.path.join(ROOT, src)
    if fragment and full.endswith(".md") and os.path.isfile(full):
        if fragment not in anchors(full) and fragment.lower() not in anchors(full):
            rel = os.path.relpath(full, ROOT)
            problems.append(f"{src}:{lineno}: link to {target}: {rel} has no heading #{fragment}")


def check_markdown(src, problems):
    with open(os.path.join(ROOT, src), encoding="utf-8") as f:
        lines = f.read().splitlines()
    in_fence = False
    for lineno, line in enumerate(lines, 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        visible = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for m in INLINE_LINK.finditer(visible):
            check_target(src, lineno, m.group(1), problems)
        m = REF_DEF.match(visible)
        if m:
            check_target(src, lineno, m.group(1), problems)
        for m in HTML_ATTR.finditer(visible):
            check_target(src, lineno, m.group(1), problems)


def code_files():
    files = []
    for place in CODE_PLACES:
        for p in tracked(place):
            if p == place or p.endswith(CODE_SUFFIXES) or os.path.basename(p) == "Makefile":
                files.append(p)
    return sorted(set(files))


def check_code(src, problems):
    try:
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        return
    for lineno, line in enumerate(lines, 1):
        for m in MD_PATH.finditer(line):
            name = m.group(0)
            before = line[: m.start()]
            # `$out/summary.md`, `${dir}/x.md`: a path under a variable, not in the repository.
            if before.endswith(("$", "}", ")")) or re.search(r"\$\{?\w+\}?/?$", before):
                continue
            # A URL's path is not a path into the repository.
            if re.search(r"[A-Za-z][A-Za-z0-9+.-]*://\S*$", before):
                continue
            if (src, name) in NOT_PATHS:
                continue
            candidates = [os.path.join(ROOT, name), os.path.join(ROOT, os.path.dirname(src), name)]
            if not any(os.path.exists(os.path.normpath(c)) for c in candidates):
                problems.append(f"{src}:{lineno}: names {name}: no such file (from the repository root or {os.path.dirname(src) or '.'}/)")


def main():
    problems = []
    for md in tracked("*.md"):
        check_markdown(md, problems)
    for src in code_files():
        if src != "scripts/check_links.py":  # its own table of names that are not paths
            check_code(src, problems)
    for p in problems:
        print(p)
    if problems:
        print(f"check_links: {len(problems)} broken reference(s)", file=sys.stderr)
        return 1
    print("check_links: every reference resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
