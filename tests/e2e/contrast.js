// WCAG 2 contrast of every element's own text against its effective background (SVG text:
// its fill): 4.5:1, or 3:1 for large text. Returns the elements below it.
() => {
  const chan = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const parts = c => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = parts(c); return 0.2126 * chan(r) + 0.7152 * chan(g) + 0.0722 * chan(b); };
  const opaque = c => { const p = parts(c); return p.length === 3 || (p.length > 3 && p[3] > 0); };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && opaque(c)) return c;
    }
    return "rgb(255, 255, 255)";
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const st = getComputedStyle(el);
    if (st.display === "none" || st.visibility === "hidden") continue;
    const fg = el instanceof SVGElement ? st.fill : st.color;
    if (!fg || !fg.startsWith("rgb")) continue;
    const a = lum(fg), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(el.tagName + " '" + el.textContent.trim().slice(0, 40) + "' " + ratio.toFixed(2));
  }
  return bad;
}
