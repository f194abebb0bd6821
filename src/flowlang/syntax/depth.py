"""The one nesting limit of a script: how deep its parsed tree may go (expressions inside
expressions, blocks inside blocks, interpolations inside strings, all counted together). Every
later pass (the tree transformer, the checker, the compiler, the generated code, the run) walks
the tree recursively, so a tree past the limit is refused here, once, with its position; the
walk below is itself iterative, so any depth can be measured."""

from __future__ import annotations

from bisect import bisect_right

from lark import Token, Tree

MAX_NESTING = 100  # tree levels; far beyond any real script, well within Python's stack for every pass
# Rules the parser keeps flat (`a + b + c` is one node of five children) but that become one nested
# node per operator (left-associative): each of their operands counts as that many levels deeper.
CHAINS = frozenset({"coalesce", "or_expr", "and_expr", "sum", "product"})
CHAIN_OPERATORS = {"coalesce": "??", "or_expr": "or", "and_expr": "and", "sum": "+ or -", "product": "* or /"}


class TooDeep(Exception):
    """The tree goes past MAX_NESTING levels; `position` is where (an offset into the parsed text).
    `chain`, when a row of operators (`a + b + ...`) is what went past: its rule and operands."""

    def __init__(self, position: int, chain: tuple[str, int] | None = None) -> None:
        super().__init__("the script nests too deeply")
        self.position = position
        self.chain = chain


class Depths:
    """How deep each string token with an interpolation sits, so that the expressions inside it are
    counted from there."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.depths: list[int] = []

    def at(self, position: int, default: int) -> int:
        """The depth of the string token that starts at or last before `position`."""
        i = bisect_right(self.starts, position) - 1
        return self.depths[i] if i >= 0 else default


def measure(tree: Tree[Token], base: int, offset: int) -> Depths:
    """Refuse a tree deeper than MAX_NESTING (counting from `base`); note the depth of its strings."""
    found = Depths()
    strings: list[tuple[int, int]] = []
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, base)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Token):
            if node.type == "DQ_STRING" and "{" in node:
                strings.append(((node.start_pos or 0) + offset, depth))
            continue
        if depth > MAX_NESTING:
            raise TooDeep(_position(node))
        step = sum(1 for c in node.children if not _operator(c)) if node.data in CHAINS else 1
        if step > 1 and depth + step > MAX_NESTING:  # a flat row that reads as no nesting: say so
            operands = [c for c in node.children if not _operator(c)]
            crossing = operands[max(0, MAX_NESTING - depth)]
            where = _position(crossing) if isinstance(crossing, Tree) else (crossing.start_pos or 0)
            raise TooDeep(where, (node.data, step))
        stack.extend((child, depth + step) for child in node.children if child is not None)
    for start, depth in sorted(strings):
        found.starts.append(start)
        found.depths.append(depth)
    return found


def _operator(node: Tree[Token] | Token | None) -> bool:
    return isinstance(node, Tree) and node.data in ("add_op", "mul_op")


def _position(node: Tree[Token]) -> int:
    """Where a subtree starts: its recorded position, else its first token's offset."""
    meta = node.meta
    if not meta.empty and meta.start_pos is not None:
        return int(meta.start_pos)
    stack: list[Tree[Token] | Token] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Token):
            return item.start_pos or 0
        stack.extend(reversed([c for c in item.children if c is not None]))
    return 0
