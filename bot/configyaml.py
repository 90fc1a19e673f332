"""YAML for config files, bounded: the file's size, its nesting depth and its node count (aliases counted as
what they expand to) are capped while it is read, so a hostile `.autoresearch.yml` (a 10 MB string, 5,000
nested lists, a billion laughs) gets a short error instead of a RecursionError or the bot's memory. The
composed node tree maps a dotted field path back to its line (`line_of`), for `config validate`."""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_BYTES = 256 * 1024  # a project config is a few hundred bytes; the llama.cpp demo's is 200
MAX_DEPTH = 32  # mappings and lists nested in each other (a config needs 4)
MAX_NODES = 20_000  # scalars, mappings and lists, aliases expanded


class YamlProblem(ValueError):
    """The text is not YAML the bot reads; `line` (1-based) where it is known."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None):
        self.problem = problem
        self.line = line
        self.column = column
        where = f" at line {line}, column {column}" if line and column else ""  # a syntax error's place
        super().__init__(problem + where)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses to compose deeper than MAX_DEPTH or more than MAX_NODES nodes."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it stands for (aliases expanded)

    def compose_node(self, parent: Any, index: Any) -> Any:
        alias = self.check_event(yaml.AliasEvent)
        mark = self.peek_event().start_mark
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlProblem(f"nested more than {MAX_DEPTH} levels deep", mark.line + 1)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if alias:
            return node  # its size counts again where it is used (_size)
        self._sizes[id(node)] = size = 1 + sum(self._size(child) for child in _children(node))
        if size > MAX_NODES:
            raise YamlProblem(f"has more than {MAX_NODES:,} values (aliases expanded)", mark.line + 1)
        return node

    def _size(self, node: Any) -> int:
        return self._sizes.get(id(node), 1)


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def load(text: str) -> tuple[Any, Any]:
    """(the data, its node tree) of one YAML document; YamlProblem for what the bot does not read."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise YamlProblem(f"is {size:,} bytes; a config may have at most {MAX_BYTES:,}")
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = str(getattr(exc, "problem", None) or "invalid YAML")
        raise YamlProblem(
            problem, mark.line + 1 if mark else None, mark.column + 1 if mark else None
        ) from None
    except RecursionError:  # not reached with MAX_DEPTH; never an internal error either way
        raise YamlProblem(f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    return data, node


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parts(field: str) -> list[Any]:
    """`benchmark.metrics[0].name` -> ['benchmark', 'metrics', 0, 'name']."""
    return [int(i) if i else key for key, i in _PART.findall(field)]


def line_of(root: Any, field: str) -> int | None:
    """The line (1-based) of `field` in the document `root`: the key's line for a mapping entry, the item's
    for a list item; the deepest part of the path that the file has where it lacks the rest (a missing
    field's section), None when the file has none of it."""
    node, line = root, None
    for part in parts(field):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            hit = next((kv for kv in node.value if getattr(kv[0], "value", None) == part), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
