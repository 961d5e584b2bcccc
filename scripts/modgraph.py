#!/usr/bin/env python3
"""Print which source file imports which, and fail if the files import each other in a cycle.

Usage: scripts/modgraph.py [--all] [--dot]

Reads the library (src/lib.rs and its modules) and the `iamra` binary (src/main.rs,
src/cli/**): every `crate::…`, `super::…` and (from the binary) `iamra::…` path, in
`use` items and in expressions. Each path is resolved to the file that defines the
module it names; an edge "a -> b" means file a names something in file b. Code inside
`#[cfg(test)]` modules is left out (test code may look anywhere).

A module naming its own submodules (`mod x;`, `pub use x::Y`, `x::run()`) is
containment, not an import between peers: those edges are not listed and not counted
for cycles (`--all` lists them, marked "contains"). Every other edge counts, a
child's `super::` edges to its parent included, so two siblings, or a module and
an unrelated one, that name each other are a cycle.

Output: one line per file with the files it imports (only edges between different
files), then the cycles (strongly connected components) found. Exit status 1 if
there is a cycle. `--all` also prints files with no imports; `--dot` prints Graphviz.
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")


def strip(text):
    """Remove comments, strings and char literals (keeps newlines and braces of code)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x..'", text[i:i + 12]):
            m = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x..'", text[i:])
            i += len(m.group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Crate:
    def __init__(self, root_file, name):
        self.name = name
        self.files = {}  # module path tuple -> file
        self.load(root_file, ())

    def load(self, path, modpath):
        self.files[modpath] = path
        text = strip(open(path, encoding="utf-8").read())
        base = os.path.dirname(path)
        stem = os.path.basename(path)[:-3]
        own_dir = base if stem in ("mod", "lib", "main") else os.path.join(base, stem)
        for m in re.finditer(r"(#\[path\s*=\s*\"\"\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
            if m.group(1):
                continue  # #[path] modules (test fixtures) are not followed
            name = m.group(2)
            for cand in (os.path.join(own_dir, name + ".rs"), os.path.join(own_dir, name, "mod.rs")):
                if os.path.exists(cand):
                    self.load(cand, modpath + (name,))
                    break

    def file_of(self, modpath):
        """The file defining the longest prefix of modpath that is a file module."""
        for k in range(len(modpath), -1, -1):
            if tuple(modpath[:k]) in self.files:
                return self.files[tuple(modpath[:k])]
        return None


def use_paths(tree, prefix=()):
    """Expand a use tree text such as `a::{b, c::{d, e}}` into paths (lists of idents)."""
    tree = tree.strip()
    if not tree:
        return []
    # split at top-level "::{"
    depth = 0
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                head = [p for p in tree[:i].split("::") if p.strip()]
                inner = tree[i + 1:tree.rfind("}")]
                parts, d, cur = [], 0, ""
                for c2 in inner:
                    if c2 == "," and d == 0:
                        parts.append(cur)
                        cur = ""
                        continue
                    d += c2 == "{"
                    d -= c2 == "}"
                    cur += c2
                parts.append(cur)
                res = []
                for p in parts:
                    res += use_paths(p, prefix + tuple(h.strip() for h in head))
                if not res:
                    res.append(list(prefix) + [h.strip() for h in head])
                return res
            depth += 1
    tree = re.sub(r"\s+as\s+\w+$", "", tree)
    return [list(prefix) + [p.strip() for p in tree.split("::") if p.strip()]]


def edges_of(crate, lib):
    """(from_file, to_file) pairs for one crate; lib is the library Crate for `iamra::` paths."""
    edges = set()
    for modpath, path in crate.files.items():
        text = strip(open(path, encoding="utf-8").read())
        # walk with a stack of inline modules; skip #[cfg(test)] modules
        stack = []  # (name or None, brace depth at entry, is_test)
        depth = 0
        tokens = re.finditer(
            r"(?P<cfgtest>#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(?P<tname>\w+)\s*\{)"
            r"|(?P<mod>(?:pub(?:\([^)]*\))?\s+)?mod\s+(?P<mname>\w+)\s*\{)"
            r"|(?P<use>\buse\s+(?P<utree>[^;]*);)"
            r"|(?P<path>(?<![\w:])(?P<root>\w+)(?P<rest>(?:\s*::\s*(?:super|\w+))+))"
            r"|(?P<open>\{)|(?P<close>\})",
            text,
        )
        for t in tokens:
            if t.group("cfgtest") or t.group("mod"):
                name = t.group("tname") or t.group("mname")
                depth += 1
                stack.append((name, depth, bool(t.group("cfgtest"))))
                continue
            if t.group("open"):
                depth += 1
                continue
            if t.group("close"):
                if stack and stack[-1][1] == depth:
                    stack.pop()
                depth -= 1
                continue
            if any(s[2] for s in stack):
                continue
            here = list(modpath) + [s[0] for s in stack]
            if t.group("use"):
                paths = use_paths(t.group("utree"))
            else:
                paths = [[t.group("root")] + [p.strip() for p in t.group("rest").split("::") if p.strip()]]
            for p in paths:
                target = resolve(p, here, crate, lib)
                if target and target[1] != path:
                    edges.add((path, target[1], contains(crate, target[0], modpath, target[1])))
    return edges


def resolve(p, here, crate, lib):
    if not p:
        return None
    if p[0] == "crate":
        c, mp = crate, p[1:]
    elif p[0] == "self":
        c, mp = crate, here + p[1:]
    elif p[0] == "super":
        mp = list(here)
        while p and p[0] == "super":
            mp, p = mp[:-1], p[1:]
        c, mp = crate, mp + p
    elif p[0] == "iamra" and crate is not lib:
        c, mp = lib, p[1:]
    elif tuple(here + p[:1]) in crate.files:
        c, mp = crate, here + p  # a child module named relative to its parent
    else:
        return None
    mp = [x for x in mp if x not in ("self", "*")]
    f = c.file_of(mp)
    return (c, f) if f else None


def contains(crate, target_crate, modpath, target_file):
    """True when target_file is a submodule (at any depth) of the file at modpath."""
    if target_crate is not crate:
        return False
    for mp, f in crate.files.items():
        if f == target_file:
            return len(mp) > len(modpath) and mp[: len(modpath)] == tuple(modpath)
    return False


def label(path):
    rel = os.path.relpath(path, SRC)
    return rel[:-3] if rel.endswith(".rs") else rel


def sccs(nodes, adj):
    index, low, on, st, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        st.append(v)
        on.add(v)
        for w in adj.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    lib = Crate(os.path.join(SRC, "lib.rs"), "lib")
    binary = Crate(os.path.join(SRC, "main.rs"), "bin")
    edges = edges_of(lib, lib) | edges_of(binary, lib)
    adj = {}
    for a, b, contained in edges:
        if not contained:
            adj.setdefault(a, set()).add(b)
    nodes = set(lib.files.values()) | set(binary.files.values())
    if "--dot" in sys.argv:
        print("digraph modules {")
        for a, b, contained in sorted(edges):
            style = " [style=dotted]" if contained else ""
            print(f'  "{label(a)}" -> "{label(b)}"{style};')
        print("}")
    else:
        for n in sorted(nodes, key=label):
            targets = sorted(label(t) for t in adj.get(n, ()))
            if "--all" in sys.argv:
                targets += sorted(f"{label(b)} (contains)" for a, b, c in edges if a == n and c)
            if targets or "--all" in sys.argv:
                print(f"{label(n)} -> {', '.join(targets) if targets else '(none)'}")
    cycles = sccs(nodes, adj)
    print()
    if cycles:
        for c in cycles:
            print("cycle: " + " <-> ".join(label(x) for x in c))
        print(f"{len(cycles)} import cycle(s) between files")
        return 1
    count = sum(len(v) for v in adj.values())
    print(f"no import cycle between files ({len(nodes)} files, {count} import edges)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
