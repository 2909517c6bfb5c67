#!/usr/bin/env python3
"""Prepares rtsync's public headers for Doxygen (run by scripts/api-docs.sh).

Usage: doxygen_filter.py SRC_DIR OUT_DIR — writes a filtered copy of every *.hpp under SRC_DIR to
the same relative path under OUT_DIR, in one process (Doxygen's per-file INPUT_FILTER would start
an interpreter per header and pass).

The headers document their contract in plain `//` comments, the repository's style. This filter
hands those comments to Doxygen as documentation without changing the files, by these rules:

- The comment block that opens a file (before its first line of code) describes the file.
- A `//` comment on its own line documents the declaration that follows it (comments inside a
  function body stay plain comments: they explain the code, not the function). When declarations
  follow it line after line (no blank line, no other comment, same scope), the comment documents
  each of them: the run becomes a Doxygen member group whose undocumented members take the first
  member's description (DISTRIBUTE_GROUP_DOC).
- A `//` comment after a member, enumerator or alias on the same line documents that member.
  Tool markers (NOLINT, IWYU pragma), `// namespace` closers and section titles
  (`// ---- reading ----`) are not documentation and are left as they are.

Lines are rewritten, never added or removed, so Doxygen's line numbers stay the header's.
"""
import pathlib
import re
import sys

COMMENT_LINE = re.compile(r"^(\s*)//( |$)")
SEPARATOR = re.compile(r"^\s*// ?-{3,}")  # `// ---- reading ----`: a section title, not a description
TRAILING = re.compile(r"([;,{}])(\s+)// (?!NOLINT|IWYU|namespace)")
# Destructors and deleted functions need no description (Doxygen does not ask for one); a run of
# declarations ends before them so they do not take the description of a constructor above.
SPECIAL = re.compile(r"^\s*(virtual\s+)?~\w+\s*\(|=\s*delete\s*;")
ACCESS = re.compile(r"^\s*(public|private|protected)\s*:")
TOOL_MARKER = re.compile(r"//\s*(NOLINT|IWYU)")


def brace_delta(code):
    code = re.sub(r'"(\\.|[^"\\])*"', '""', code)  # string literals
    code = re.sub(r"'(\\.|[^'\\])*'", "''", code)
    code = code.split("//", 1)[0]
    return code.count("{") - code.count("}")


def filter_header(text):
    lines = text.split("\n")
    out = list(lines)

    # 1. The file's opening comment block.
    i = 0
    while i < len(lines) and COMMENT_LINE.match(lines[i]) and not lines[i].startswith(" "):
        out[i] = "///" + lines[i][2:]
        i += 1
    if i > 0:
        out[i - 1] += " @file"

    # 2. Comments on their own line, trailing comments and member groups.
    # For each open brace: "enum", "type" (class, struct, union, namespace) or "code" (a function
    # body, a lambda, an initializer). Comments inside code explain the code: they are left as
    # plain comments, so a function is not documented by the comments in its body.
    scopes = []
    close_at = set()  # last lines of member groups
    n = len(lines)
    while i < n:
        line = lines[i]
        if SEPARATOR.match(line):
            i += 1
            continue
        in_code = "code" in scopes
        if COMMENT_LINE.match(line) and in_code:
            i += 1
            continue
        if COMMENT_LINE.match(line):
            j = i
            while j < n and COMMENT_LINE.match(lines[j]) and not SEPARATOR.match(lines[j]):
                out[j] = re.sub(r"//", "///", lines[j], count=1)
                j += 1
            # The run of declarations the comment documents.
            run = []
            k = j
            in_enum = bool(scopes) and scopes[-1] == "enum"
            while k < n and not in_enum:
                code = lines[k]
                if (not code.strip() or COMMENT_LINE.match(code) or ACCESS.match(code)
                        or code.lstrip().startswith("#") or brace_delta(code) != 0
                        or SPECIAL.search(code)):
                    break
                run.append(k)
                k += 1
            if len(run) > 1:
                out[j - 1] += " @{"
                close_at.add(run[-1])
            i = j
            continue
        if not TOOL_MARKER.search(line) and not in_code:
            out[i] = TRAILING.sub(lambda m: m.group(1) + m.group(2) + "///< ", out[i], count=1)
        d = brace_delta(line)
        if d > 0:
            for _ in range(d):
                if re.search(r"\benum\b", line):
                    scopes.append("enum")
                elif re.search(r"\b(class|struct|union|namespace)\b", line) and "(" not in line:
                    scopes.append("type")
                else:
                    scopes.append("code")
        elif d < 0:
            for _ in range(-d):
                if scopes:
                    scopes.pop()
        i += 1
    # A group closes at the end of its last line (`///@}`); a comment already on that line
    # becomes a block comment so the marker stays outside it.
    for k in close_at:
        m = re.search(r"(///<|//) (.*)$", out[k])
        if m and "*/" not in m.group(2):
            marker = "/**<" if m.group(1) == "///<" else "/*"
            out[k] = out[k][: m.start()] + marker + " " + m.group(2) + " */"
        out[k] += " ///@}"
    return "\n".join(out)


def main(src, dst):
    for path in sorted(pathlib.Path(src).rglob("*.hpp")):
        target = pathlib.Path(dst) / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(filter_header(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
