"""The page's building blocks: escaped text, inline images, tables, the markdown the tables are written in.

Everything an element needs is inside the page: an image is a data: URI, the style and the one script are
inline, and the Content-Security-Policy forbids any other source, so the page asks the network for nothing
even when a reader's browser would.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from degradation.figures import style  # the Agg backend, set before pyplot loads

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
REPORT_DPI = 110  # the report's own plots: sharp at a page's width, a fraction of a PDF-ready 150 dpi's bytes

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d1d1f;
background:#fff;overflow-wrap:anywhere}
main{max-width:1180px;margin:0 auto;padding:12px 16px 40px}
header h1{font-size:1.35em;margin:.2em 0}
header p{margin:.2em 0;color:#444}
h2{font-size:1.2em;margin:1.6em 0 .4em;padding-top:.4em;border-top:1px solid #ddd}
h3{font-size:1.05em;margin:1.1em 0 .3em}
nav{font-size:.9em;margin:.3em 0}
nav a{margin-right:.8em;white-space:nowrap}
img{max-width:100%;height:auto;display:block;margin:.4em 0}
.verdict{border-left:5px solid #1f3f8f;background:#f3f6fb;padding:.5em .8em;margin:.5em 0}
.verdict p{margin:.25em 0}
.bad{color:#9b1c1c}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.85em;margin:.4em 0;overflow-wrap:normal}
th,td{border:1px solid #d0d0d0;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
tr.failed td{background:#fdecec}
tr.unfinished td{background:#fff7e0}
code,pre{font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f6f6;padding:.5em;margin:.3em 0}
input{font:inherit;padding:2px 6px;max-width:100%}
.note{color:#555;font-size:.9em}
"""

# Rows of the runs table whose text does not contain every word typed are hidden (no network, no library).
FILTER_SCRIPT = """
document.querySelectorAll('input[data-filter]').forEach(function(box){
  box.addEventListener('input',function(){
    var words=box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    document.querySelectorAll('#'+box.dataset.filter+' tbody tr').forEach(function(row){
      var text=row.textContent.toLowerCase();
      row.hidden=!words.every(function(w){return text.indexOf(w)>=0;});
    });
  });
});
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str) -> str:
    return f'<img src="{data_uri(png)}" alt="{esc(alt)}">'


def figure_png(fig: Figure, dpi: int = REPORT_DPI) -> bytes:
    """A matplotlib figure as PNG bytes (closed afterwards), laid out and cropped as figures/style.save does."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches=style.lay_out(fig, dpi))
    style.plt.close(fig)
    return buffer.getvalue()


def file_img(path: Path, alt: str) -> str:
    """A PNG written by `degradation plot`, inlined."""
    return img(Path(path).read_bytes(), alt)


def table(frame: pd.DataFrame, table_id: str = "", row_class: Callable[[pd.Series], str] | None = None) -> str:
    """A DataFrame as an HTML table in a box that scrolls sideways on a narrow screen (the page never does)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cls = row_class(row) if row_class else ""
        cells = "".join(f"<td>{esc('' if _missing(v) else v)}</td>" for v in row)
        rows.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return (f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _missing(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>")]
_IMAGE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")


def _inline(text: str) -> str:
    out = esc(text)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown(text: str, image: Callable[[str, str], str] | None = None, shift: int = 1) -> str:
    """The markdown the tool writes (headings, paragraphs, `- ` lists, pipe tables, images on their own line) as
    HTML; headings move down `shift` levels to sit under the page's sections. An image becomes image(alt, src),
    or nothing: a page never points at a file beside it."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + shift, 6)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
            i += 1
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append(lines[i])
                i += 1
            body = [_cells(b) for b in block[2:]] if len(block) > 1 and set(block[1]) <= set("|-: ") else \
                [_cells(b) for b in block[1:]]
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(block[0]))
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
            out.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
                       "</div>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:].strip())}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        elif picture := _IMAGE.match(line.strip()):
            alt, src = picture.groups()
            out.append(image(alt, src) if image else "")
            i += 1
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ")):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


def page(title: str, body: str) -> str:
    """The whole document: inline style and script, and a policy that lets nothing be fetched."""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body><main>\n{body}\n</main>"
        f"<script>{FILTER_SCRIPT}</script></body></html>\n"
    )

