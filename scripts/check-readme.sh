#!/usr/bin/env bash
# Checks that what README.md names exists (run by CI, .ci/run):
# - every `allot <command> [<subcommand>]` in a code span or code block is
#   a command of the built binary (`allot <command> --help`), and every
#   `--flag` on such a line is in that command's --help;
# - every repository path in a code span (one with a '/') or a link
#   exists (paths made at run time, under .tools/, data/ and target/, are
#   skipped; a bare `dir/` not at the root is a module directory under
#   src/ or core/src/);
# - every config key `section.key` whose section is in
#   config/default.toml is a key of that section there.
# Prints each miss and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --quiet --bin allot
exec python3 - "$@" <<'PY'
import os, re, subprocess, sys

readme = open("README.md").read()
allot = "target/debug/allot"
missing = []

# Code spans (outside code blocks) and code-block lines.
spans, block_lines, in_block = [], [], False
for line in readme.splitlines():
    if line.lstrip().startswith("```"):
        in_block = not in_block
        continue
    if in_block:
        block_lines.append(line.strip())
    else:
        spans += re.findall(r"`([^`]+)`", line)
# A span may wrap over two lines.
spans += [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", readme, flags=re.S)) if "\n" in s]

helps = {}
def help_of(words):
    key = tuple(words)
    if key not in helps:
        r = subprocess.run([allot, *words, "--help"], capture_output=True, text=True)
        helps[key] = r.stdout if r.returncode == 0 else None
    return helps[key]

def subcommands(text):
    m = re.search(r"^Commands:\n((?:  .*\n)+)", text, re.M)
    return {l.split()[0] for l in m.group(1).splitlines()} if m else set()

commands = 0
for text in spans + block_lines:
    if not text.startswith("allot "):
        continue
    words = text.split("#")[0].split()[1:]
    if not words or not re.fullmatch(r"[a-z]+", words[0]):
        continue
    cmd = [words[0]]
    top = help_of(cmd)
    if top is None:
        missing.append(f"command `allot {words[0]}` (from `{text}`)")
        continue
    subs = subcommands(top)
    if subs and len(words) > 1 and re.fullmatch(r"[a-z]+", words[1]):
        if words[1] not in subs:
            missing.append(f"command `allot {words[0]} {words[1]}` (from `{text}`)")
            continue
        cmd.append(words[1])
    h = help_of(cmd) or ""
    for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", h):
            missing.append(f"flag `{flag}` of `allot {' '.join(cmd)}` (from `{text}`)")
    commands += 1

# Paths.
skip = (".tools/", "data/", "target/")
paths = set(re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme))
paths = {p for p in paths if not re.match(r"[a-z]+:", p)}
for s in spans:
    if "/" in s and not re.search(r"[\s<>{}*:$]", s) and not s.startswith("/") \
            and re.fullmatch(r"[\w./-]+", s) and not s.startswith(".."):
        paths.add(s)
checked = 0
for p in sorted(paths):
    if p.startswith(skip):
        continue
    checked += 1
    if re.fullmatch(r"(application|text|image|multipart)/[\w.+-]+", p):
        checked -= 1  # a media type, not a path
        continue
    if re.fullmatch(r"[\w-]+/", p) and not os.path.isdir(p):
        # A module directory named beside its parent (`rules/` in the
        # layer table's core/src/domain row): one of that name must exist.
        found = any(p[:-1] in dirs for root in ("src", "core/src")
                    for _, dirs, _ in os.walk(root))
        if not found:
            missing.append(f"directory `{p}` (none of that name under src/ or core/src/)")
        continue
    if not os.path.exists(p):
        missing.append(f"path `{p}`")

# Config keys.
keys, section = {}, None
for line in open("config/default.toml"):
    m = re.match(r"\s*\[\[?([a-z_.]+)\]\]?", line)
    if m:
        section = m.group(1)
        keys.setdefault(section, set())
        continue
    if section:
        m = re.match(r"\s*#?\s*([a-z_]+(?:\s*/\s*[a-z_]+)*)\s*=", line)
        if m:
            keys[section].update(k.strip() for k in m.group(1).split("/"))
        m = re.match(r"\s*#?\s*([a-z_]+)\s*=", line)
        if m:
            keys[section].add(m.group(1))
n_keys = 0
for s in spans:
    m = re.fullmatch(r"([a-z_]+)\.([a-z_]+)(?:\s*=.*)?", s)
    if not m or m.group(1) not in keys:
        continue
    n_keys += 1
    sec, key = m.groups()
    sub = f"{sec}.{key}"
    if key not in keys[sec] and sub not in keys:
        missing.append(f"config key `{sec}.{key}` (not in [{sec}] of config/default.toml)")

for m in missing:
    print(f"README.md names a missing {m}", file=sys.stderr)
print(f"check-readme: {commands} command lines, {checked} paths, {n_keys} config keys; "
      f"{len(missing)} missing")
sys.exit(1 if missing else 0)
PY
