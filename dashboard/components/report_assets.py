"""What the HTML report carries besides its tables: the app's chart colours and plotly.js, packed small.

Colours. The app draws every chart with Streamlit's Plotly theme, whose template holds placeholder colours
(`#000001` … `#000040`) that Streamlit's frontend swaps for the theme's colours in the browser. A figure written to a
file keeps the placeholders, which is why the report's traces were near-black. `themed` makes the same swap in
Python with the colours of the light theme the app uses (`.streamlit/config.toml`: base = "light"; the values are
those of Streamlit's frontend, `chartCategoricalColors` and friends), and gives every axis and title Plotly's
automargin, so labels are never clipped by the app's tight 10 px margins.

Size. plotly.min.js is 4.8 MB. The report carries it LZMA-compressed (1.12 MB with plotly 7.1; raw deflate, which
browsers can inflate natively, gives 1.47 MB and left a 2,700-event report at 1.99 MB) in base-85 text, 1.25
characters per byte against base64's 1.33, and the figures the same way. A 2.5 kB LZMA decoder in the page
(`LOADER`, written from the format's specification, LzmaSpec.cpp of the LZMA SDK; checked byte for byte against
Python's `lzma` in tests/dashboard/test_report.py) unpacks both, then plotly.js runs from the unpacked text.
Nothing is fetched and no browser feature newer than typed arrays is needed: the report opens offline anywhere.
The alphabet is Python's `b85encode` with `<` replaced by `.`, so a packed block can never contain `</script` or
`<!--` and is safe inside a script element.
"""

from __future__ import annotations

import base64
import json
import lzma
from pathlib import Path
from typing import Any

import numpy as np
import plotly
import plotly.graph_objects as go

__all__ = ["APP_COLOURS", "themed", "pack", "unpack", "plotly_block", "figures_block", "LOADER"]

_CATEGORICAL = ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700", "#ffd16a", "#6d3fc0", "#d5dae5"]
_SEQUENTIAL = ["#e4f5ff", "#c7ebff", "#a6dcff", "#83c9ff", "#60b4ff", "#3d9df3", "#1c83e1", "#0068c9", "#0054a3", "#004280"]
_DIVERGING = ["#7d353b", "#bd4043", "#ff4b4b", "#ff8c8c", "#ffc7c7", "#a6dcff", "#60b4ff", "#1c83e1", "#0054a3", "#004280"]
# Streamlit's placeholder -> the light theme's colour. 32-34: waterfall/candlestick increasing, decreasing, total;
# 35-40: greys, background, faded text and background mix of tables.
APP_COLOURS: dict[str, str] = {
    **{f"#{i + 1:06d}": c for i, c in enumerate(_CATEGORICAL)},
    **{f"#{i + 11:06d}": c for i, c in enumerate(_SEQUENTIAL)},
    **{f"#{i + 21:06d}": c for i, c in enumerate(_DIVERGING)},
    "#000032": "#09ab3b", "#000033": "#ff2b2b", "#000034": "#0068c9", "#000035": "#d5dae5",
    "#000036": "#808495", "#000037": "#262730", "#000038": "#ffffff", "#000039": "#f0f2f6", "#000040": "#f8f9fb",
}
_TEXT = "#1f2937"  # the app's textColor (.streamlit/config.toml)
_FONT = "system-ui,-apple-system,'Segoe UI',sans-serif"  # the report's own font (the page style)
_ALPHABET_FROM, _ALPHABET_TO = "<", "."  # '.' is not in b85's alphabet, '<' is


def themed(fig: go.Figure) -> dict[str, Any]:
    """`fig` as Plotly JSON (data and layout) in the app's colours, with margins that never clip a label.

    Placeholders are swapped wherever they occur (template, colorway, colours px baked into traces), as the app's
    frontend does; a figure drawn with another template keeps its own colours.
    """
    fig = go.Figure(fig)
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    fig.update_layout(font=dict(family=_FONT, color=_TEXT), paper_bgcolor="#ffffff", plot_bgcolor="#ffffff",
                      title_automargin=True)
    text = fig.to_json(engine="json")
    for placeholder, colour in APP_COLOURS.items():
        text = text.replace(f'"{placeholder}"', f'"{colour}"').replace(f'"{placeholder.upper()}"', f'"{colour}"')
    return _plain_arrays(json.loads(text))


def _plain_arrays(node: Any) -> Any:
    """Plotly's typed arrays ({"dtype", "bdata"}: base64 of the raw numbers) as plain lists, floats to 4
    significant digits: a chart shows no more, and the digits' text deflates 3x better than random float bytes."""
    if isinstance(node, dict):
        if set(node) >= {"dtype", "bdata"} and isinstance(node["bdata"], str):
            arr = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
            if "shape" in node:
                arr = arr.reshape([int(n) for n in str(node["shape"]).split(",")])
            if arr.dtype.kind == "f":
                return [[_short(v) for v in row] for row in arr.tolist()] if arr.ndim == 2 else [_short(v) for v in arr.tolist()]
            return arr.tolist()
        return {k: _plain_arrays(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain_arrays(v) for v in node]
    return node


def _short(v: float) -> float | None:
    return None if not np.isfinite(v) else float(f"{v:.4g}")


def pack(data: bytes) -> tuple[str, int]:
    """`data` LZMA-compressed (.lzma "alone" format, preset 6: preset 9 is no smaller on plotly.js and takes 1.5x as
    long) and written in base-85 text without '<' (see the module's note), with the compressed length (base-85
    pads the last group of 4 bytes; `unpack` cuts the padding, the page's decoder stops at the unpacked size)."""
    raw = lzma.compress(data, format=lzma.FORMAT_ALONE, preset=6)
    return base64.b85encode(raw, pad=True).decode("ascii").replace(_ALPHABET_FROM, _ALPHABET_TO), len(raw)


def unpack(text: str, packed: int) -> bytes:
    """The inverse of `pack`: `packed` is the compressed length it gave."""
    return lzma.decompress(base64.b85decode(text.replace(_ALPHABET_TO, _ALPHABET_FROM))[:packed], format=lzma.FORMAT_ALONE)


def _block(block_id: str, data: bytes) -> str:
    text, packed = pack(data)
    return (f"<script type='application/octet-stream' id='{block_id}' data-packed='{packed}' "
            f"data-size='{len(data)}'>{text}</script>")


def plotly_block() -> str:
    """The script element holding the installed plotly.min.js, packed (about 3 s: the app asks for it through
    `dashboard.cache.plotly_js`, built once per server like the other shared resources)."""
    return _block("il-plotly", (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes())


def figures_block(figures: list[tuple[str, dict[str, Any]]]) -> str:
    """The script element holding the figures (div id, Plotly JSON), packed."""
    return _block("il-figures", json.dumps([{"id": i, **f} for i, f in figures], separators=(",", ":")).encode("utf-8"))


# `unlzma(bytes, size)` decodes an .lzma stream whose unpacked size is known (the whole output is its own
# dictionary); then both blocks are unpacked, plotly.js runs from its text and each figure is drawn into its div.
# If anything fails, each chart's place says so in one sentence; the tables need no script.
LOADER = """<script>
(function(){
function unlzma(src,size){
var out=new Uint8Array(size),pos=0,ip=13,d=src[0],lc=d%9;d=(d/9)|0;var lp=d%5,pb=(d/5)|0;
var range=0xFFFFFFFF,code=0;ip++;for(var i=0;i<4;i++)code=((code<<8)|src[ip++])>>>0;
function P(n){var a=new Uint16Array(n);a.fill(1024);return a;}
function bit(p,i){var b=(range>>>11)*p[i];var r;if(code<b){range=b;p[i]+=(2048-p[i])>>>5;r=0;}else{range=(range-b)>>>0;code=(code-b)>>>0;p[i]-=p[i]>>>5;r=1;}
if(range<16777216){range=(range*256)>>>0;code=((code*256)+src[ip++])>>>0;}return r;}
function tree(p,o,n){var m=1;for(var i=0;i<n;i++)m=(m<<1)+bit(p,o+m);return m-(1<<n);}
function rtree(p,o,n){var m=1,s=0;for(var i=0;i<n;i++){var b=bit(p,o+m);m=(m<<1)+b;s|=b<<i;}return s;}
function direct(n){var r=0;for(var i=0;i<n;i++){range=range>>>1;var b=0;if(code>=range){code=(code-range)>>>0;b=1;}r=((r<<1)|b)>>>0;
if(range<16777216){range=(range*256)>>>0;code=((code*256)+src[ip++])>>>0;}}return r;}
function Len(){return{c:P(2),low:P(16<<3),mid:P(16<<3),high:P(256)};}
function len(L,ps){if(bit(L.c,0)===0)return tree(L.low,ps<<3,3);if(bit(L.c,1)===0)return 8+tree(L.mid,ps<<3,3);return 16+tree(L.high,0,8);}
var lit=P(0x300<<(lc+lp)),slot=P(4<<6),posd=P(115),align=P(16),isMatch=P(192),isRep=P(12),g0=P(12),g1=P(12),g2=P(12),rep0long=P(192),LD=Len(),RD=Len();
var state=0,r0=0,r1=0,r2=0,r3=0,pm=(1<<pb)-1,lm=(1<<lp)-1;
while(pos<size){var ps=pos&pm;
if(bit(isMatch,(state<<4)+ps)===0){var prev=pos>0?out[pos-1]:0,base=0x300*(((pos&lm)<<lc)+(prev>>>(8-lc))),s=1;
if(state>=7){var mb=out[pos-r0-1];do{var mbit=(mb>>>7)&1;mb<<=1;var b=bit(lit,base+((1+mbit)<<8)+s);s=(s<<1)|b;if(mbit!==b)break;}while(s<0x100);}
while(s<0x100)s=(s<<1)|bit(lit,base+s);out[pos++]=s&255;state=state<4?0:state<10?state-3:state-6;continue;}
var n;
if(bit(isRep,state)!==0){
if(bit(g0,state)===0){if(bit(rep0long,(state<<4)+ps)===0){state=state<7?9:11;out[pos]=out[pos-r0-1];pos++;continue;}}
else{var dist;if(bit(g1,state)===0)dist=r1;else{if(bit(g2,state)===0)dist=r2;else{dist=r3;r3=r2;}r2=r1;}r1=r0;r0=dist;}
n=len(RD,ps);state=state<7?8:11;}
else{r3=r2;r2=r1;r1=r0;n=len(LD,ps);state=state<7?7:10;
var ls=n<3?n:3,sl=tree(slot,ls<<6,6);
if(sl<4)r0=sl;else{var nd=(sl>>>1)-1,dd=((2|(sl&1))<<nd)>>>0;
if(sl<14)dd+=rtree(posd,dd-sl,nd);else{dd=(dd+direct(nd-4)*16)>>>0;dd+=rtree(align,0,4);}r0=dd>>>0;}
if(r0===0xFFFFFFFF)break;}
n+=2;for(var k=0;k<n&&pos<size;k++){out[pos]=out[pos-r0-1];pos++;}}
return out;}
var A="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;.=>?@^_`{|}~";
function b85(s){var m=new Uint8Array(128);for(var i=0;i<85;i++)m[A.charCodeAt(i)]=i;
var o=new Uint8Array(s.length/5*4),j=0;for(var i=0;i<s.length;i+=5){var v=0;
for(var k=0;k<5;k++)v=v*85+m[s.charCodeAt(i+k)];o[j++]=v>>>24;o[j++]=(v>>>16)&255;o[j++]=(v>>>8)&255;o[j++]=v&255;}
return o;}
function text(id){var el=document.getElementById(id);return new TextDecoder().decode(unlzma(b85(el.textContent.trim()),+el.dataset.size));}
try{var s=document.createElement("script");s.textContent=text("il-plotly");document.head.appendChild(s);
JSON.parse(text("il-figures")).forEach(function(f){Plotly.newPlot(f.id,f.data,f.layout,{displaylogo:false,responsive:true});});
document.body.dataset.charts="drawn";}
catch(e){document.querySelectorAll(".il-chart").forEach(function(d){d.textContent="The charts could not be drawn in this browser ("+e.name+"); the tables below are complete.";});}
})();
</script>"""
