"""Markdown as GitHub shows it, for the sandbox's web views and the bot's run page: GFM tables, task
lists, strikethrough, `<details>`, fenced code (a `mermaid` fence stays code: GitHub draws it with
JavaScript, these pages do not), raw HTML sanitized the way GitHub's allowlist does (no script, style,
iframe, form or event handler; links only http(s), mailto and relative).

markdown-it-py is a CommonMark parser with GFM's table and strikethrough rules built in, and
mdit-py-plugins adds GFM task lists; nh3 (the Rust `ammonia` sanitizer) applies the allowlist. Both are
well kept and do what hand-written regexes would get wrong (nested emphasis, pipes in code spans,
`<details>` around a table, attributes smuggled in entity-encoded form).
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.tasklists import tasklists_plugin

# GitHub's allowlist (its html-pipeline SanitizationFilter), less what the sandbox never needs
TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "br", "b", "i", "strong", "em", "a", "pre", "code", "img", "tt",
    "div", "ins", "del", "sup", "sub", "p", "ol", "ul", "table", "thead", "tbody", "tfoot", "blockquote",
    "dl", "dt", "dd", "kbd", "q", "samp", "var", "hr", "ruby", "rt", "rp", "li", "tr", "td", "th", "s",
    "strike", "summary", "details", "caption", "figure", "figcaption", "abbr", "bdo", "cite", "dfn",
    "mark", "small", "span", "time", "wbr", "input",
}  # fmt: skip
ATTRIBUTES = {
    "*": {
        "abbr", "align", "alt", "aria-hidden", "aria-label", "border", "colspan", "dir", "height",
        "lang", "open", "rowspan", "scope", "start", "title", "type", "valign", "width",
    },
    "a": {"href"},
    "img": {"src"},
    "input": {"checked", "disabled"},
    "blockquote": {"cite"},
}  # fmt: skip
# classes GitHub's own renderer puts on what it generates (task lists, a fence's language)
CLASSES = {
    "li": {"task-list-item"},
    "ul": {"contains-task-list"},
    "input": {"task-list-item-checkbox"},
    "code": {"language-mermaid", "language-text", "language-sh", "language-python", "language-diff"},
}
URL_SCHEMES = {"http", "https", "mailto"}

_md = (
    MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    .enable(["table", "strikethrough"])
    .use(tasklists_plugin, enabled=False)
)


def render(text: str | None) -> str:
    """Markdown (untrusted) to sanitized HTML, as GitHub renders a comment, issue or pull request body."""
    html = _md.render(text or "")
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener",
        strip_comments=True,
    )


# GitHub's comment styles that decide layout (primer's markdown-body), so a page here is as wide as there
CSS = """
.markdown-body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI","Noto Sans",Helvetica,Arial,
sans-serif;font-size:14px;line-height:1.5;word-wrap:break-word;color:#1f2328}
.markdown-body>*:first-child{margin-top:0}.markdown-body>*:last-child{margin-bottom:0}
.markdown-body h1,.markdown-body h2{border-bottom:1px solid #d1d9e0b3;padding-bottom:.3em}
.markdown-body h1{font-size:2em}.markdown-body h2{font-size:1.5em}.markdown-body h3{font-size:1.25em}
.markdown-body h4{font-size:1em}
.markdown-body h1,.markdown-body h2,.markdown-body h3,.markdown-body h4{margin:24px 0 16px;font-weight:600;
line-height:1.25}
.markdown-body p,.markdown-body blockquote,.markdown-body ul,.markdown-body ol,.markdown-body table,
.markdown-body pre,.markdown-body details{margin-top:0;margin-bottom:16px}
.markdown-body ul,.markdown-body ol{padding-left:2em}
.markdown-body ul.contains-task-list{padding-left:0}
.markdown-body li.task-list-item{list-style-type:none}
.markdown-body .task-list-item-checkbox{margin:0 .2em .25em -1.4em;vertical-align:middle}
.markdown-body ul.contains-task-list .task-list-item-checkbox{margin:0 .3em .25em 0}
.markdown-body blockquote{padding:0 1em;color:#59636e;border-left:.25em solid #d1d9e0;margin-left:0}
.markdown-body table{border-spacing:0;border-collapse:collapse;display:block;width:max-content;
max-width:100%;overflow:auto}
.markdown-body table th{font-weight:600}
.markdown-body table th,.markdown-body table td{padding:6px 13px;border:1px solid #d1d9e0}
.markdown-body table tr{background:#fff;border-top:1px solid #d1d9e0b3}
.markdown-body table tr:nth-child(2n){background:#f6f8fa}
.markdown-body code,.markdown-body tt{padding:.2em .4em;margin:0;font-size:85%;white-space:break-spaces;
background:#818b981f;border-radius:6px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.markdown-body pre{padding:16px;overflow:auto;font-size:85%;line-height:1.45;background:#f6f8fa;
border-radius:6px}
.markdown-body pre code{padding:0;background:transparent;white-space:pre;font-size:100%}
.markdown-body details summary{cursor:pointer;display:list-item}
.markdown-body a{color:#0969da;text-decoration:none}
.markdown-body sub{font-size:75%}
.markdown-body hr{height:.25em;padding:0;margin:24px 0;background:#d1d9e0;border:0}
"""
