#!/usr/bin/env python3
"""The README's C++ snippets are the ones readme_snippets.cc compiles.

  check_snippets.py README.md readme_snippets.cc

Every ```cpp block of the README, except one preceded by a line
"<!-- readme-snippets: skip (why) -->", must appear in readme_snippets.cc:
its #include lines anywhere in the file, its other lines (stripped, blank
lines dropped) in the same order, one after another. So a snippet that is
edited in the README and not in the file (or the other way round) fails here,
and the file is compiled with -Wall -Wextra -Werror by the build.
"""
import re
import sys


def blocks(readme):
    lines = readme.split("\n")
    skip = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("<!-- readme-snippets: skip"):
            skip = True
        elif line.strip() == "```cpp":
            start = i + 1
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            if not skip:
                yield start + 1, lines[start:i]
            skip = False
        elif line.strip():
            skip = skip and line.startswith("<!--")
        i += 1


def main():
    readme = open(sys.argv[1]).read()
    source = open(sys.argv[2]).read()
    body = [l.strip() for l in source.split("\n") if l.strip()]
    includes = {l for l in body if l.startswith("#include")}
    failures = 0
    count = 0
    for line_no, block in blocks(readme):
        count += 1
        wanted = [l.strip() for l in block if l.strip()]
        missing = [l for l in wanted if l.startswith("#include") and l not in includes]
        code = [l for l in wanted if not l.startswith("#include")]
        found = any(body[k:k + len(code)] == code for k in range(len(body) - len(code) + 1))
        if missing or not found:
            failures += 1
            print(f"README.md:{line_no}: snippet not in {sys.argv[2]}"
                  + (f" (includes missing: {missing})" if missing else ""))
    print(f"{count} README snippets checked, {failures} not compiled")
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
