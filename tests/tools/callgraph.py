#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The static call graph between source files, from the objects' symbol
tables: file A calls file B when A's object needs a symbol B's defines
(nm: U in A, T/D/B/R in B). Prints each circle (a strongly connected set
of two or more files) and exits 1 if there is one that --allow does not
name; --allow FILE lists known circles, one per line as sorted file names
separated by spaces, so the set can only shrink.

  callgraph.py [--allow FILE] OBJECT_DIR...
"""
import os
import subprocess
import sys


def symbols(obj):
    out = subprocess.run(["nm", "--defined-only", obj], capture_output=True, text=True,
                         check=True).stdout
    defined = {l.split()[-1] for l in out.splitlines() if len(l.split()) == 3 and l.split()[1] in "TDBR"}
    out = subprocess.run(["nm", "--undefined-only", obj], capture_output=True, text=True,
                         check=True).stdout
    needed = {l.split()[-1] for l in out.splitlines() if l.split()}
    return defined, needed


def name(obj):
    base = os.path.basename(obj)
    return base[:-2] if base.endswith(".o") else base  # foo.c.o -> foo.c


def circles(graph):
    """Tarjan's strongly connected components of two or more nodes."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv):
    allow = set()
    if len(argv) > 2 and argv[1] == "--allow":
        with open(argv[2]) as f:
            allow = {l.strip() for l in f if l.strip() and not l.startswith("#")}
        argv = argv[2:]
    objs = [os.path.join(d, f) for d in argv[1:] for f in sorted(os.listdir(d)) if f.endswith(".o")]
    if not objs:
        print("callgraph: no objects", file=sys.stderr)
        return 2
    syms = {name(o): symbols(o) for o in objs}
    owner = {s: n for n, (defined, _) in syms.items() for s in defined}
    graph = {n: {owner[s] for s in needed if s in owner and owner[s] != n}
             for n, (_, needed) in syms.items()}
    bad = 0
    for c in circles(graph):
        known = " ".join(c) in allow
        bad += not known
        print(f"{'known' if known else 'NEW'} circle of {len(c)}: {' '.join(c)}")
    print(f"callgraph: {len(objs)} files, {sum(len(v) for v in graph.values())} calls between them")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
