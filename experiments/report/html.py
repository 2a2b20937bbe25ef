"""The report as one HTML page (the Markdown rendered, images linked beside it)."""

from __future__ import annotations

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}"
    "table{border-collapse:collapse;font-size:0.85em;margin:0.8em 0}td,th{border:1px solid #ccc;padding:3px 7px}"
    "th{background:#f3f3f3}img{max-width:100%}code{background:#f5f5f5;padding:0 3px}"
)


def to_html(markdown: str, title: str) -> str:
    try:
        from markdown_it import MarkdownIt

        body = MarkdownIt("commonmark").enable("table").render(markdown)
    except ImportError:  # pragma: no cover - markdown-it comes with rich
        import html as _h

        body = f"<pre>{_h.escape(markdown)}</pre>"
    return (
        "<!doctype html><html><head><meta "
        f"charset='utf-8'><title>{title}</title><style>{_STYLE}</style></head><body>\n{body}</body></html>\n"
    )
