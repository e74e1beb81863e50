"""The Review tab's orderable passage list: its template, style and browser script, and the
order box that mirrors it (docids, best first).

The list is a gr.HTML whose value is a list of plain dicts (ui.render.drag_items); the browser
reorders it by drag and drop or by keyboard and sends the new value back as a change event. Its
script also installs the tab's page-wide shortcut keys (a, f, r, s, n), once per page.
"""

from __future__ import annotations

DRAG_TEMPLATE = """
<ol class="rr-drag" id="rr-drag-list" aria-label="Your order: select a passage, then arrow up or down moves it; Enter opens it">
{{#each value}}<li draggable="true" tabindex="0" data-id="{{this.id}}" title="click the text or press Enter to read it all">
<span class="rr-grip">⠿</span> <b>[{{this.n}}]</b> <code>{{this.id}}</code> <span class="rr-grade">{{this.grade}}</span>
<span class="rr-snippet">{{this.text}}</span></li>{{/each}}</ol>
"""
# The list holds every passage once: collapsed to two lines, opened in place (click its text or
# Enter). It scrolls inside its own box so the page, and the actions beside it, never scroll.
DRAG_CSS = """
.rr-drag { list-style: decimal; padding-left: 2.2em; margin: 0; max-height: calc(100vh - 330px); overflow: auto; }
.rr-drag li { border: 1px solid #ccc; border-radius: 6px; padding: 3px 8px; margin: 2px 0; cursor: grab; background: #fafafa; }
.rr-drag li.rr-over { border-color: #1f5fbf; }
.rr-drag li:focus { outline: 2px solid #1f5fbf; background: #eef4ff; }
.rr-drag li.rr-hl { outline: 3px solid #f39c12; background: #fff8e6; }
.rr-grade { color: #1d5e2c; font-size: 0.85em; }
.rr-snippet { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
              color: #444; font-size: 0.88em; cursor: pointer; white-space: pre-wrap; }
.rr-drag li.rr-open .rr-snippet { display: block; -webkit-line-clamp: unset; }
"""
# Native HTML5 drag and drop on the root element (delegation survives re-renders). The keyboard
# path: the selected (focused) passage moves one place per ↑/↓ and keeps the focus, so repeated
# presses keep moving it (Gradio patches the list's nodes in place on a re-render, so the focus
# is moved to the passage after the render; a key pressed before then still moves the same
# passage). The page-wide shortcuts are installed once; keys typed into a text field are left alone.
DRAG_JS = """
let dragId = null;
element.addEventListener('dragstart', e => { const li = e.target.closest('li'); if (li) dragId = li.dataset.id; });
element.addEventListener('dragover', e => e.preventDefault());
element.addEventListener('drop', e => {
  e.preventDefault();
  const li = e.target.closest('li');
  if (!li || !dragId || li.dataset.id === dragId) { dragId = null; return; }
  const items = [...props.value];
  const [moved] = items.splice(items.findIndex(p => p.id === dragId), 1);
  const box = li.getBoundingClientRect();
  const to = items.findIndex(p => p.id === li.dataset.id);
  items.splice((e.clientY - box.top) > box.height / 2 ? to + 1 : to, 0, moved);
  props.value = items; trigger('change'); dragId = null;
});
element.addEventListener('click', e => {
  const text = e.target.closest('.rr-snippet'); if (text) text.closest('li').classList.toggle('rr-open');
});
let moving = null;  // the passage just moved, until the focus has followed it
element.addEventListener('keydown', e => {
  if (e.key === 'Enter' && e.target.matches('li[data-id]')) { e.preventDefault(); e.target.classList.toggle('rr-open'); return; }
  const step = {ArrowUp: -1, ArrowDown: 1}[e.key];
  const li = step && !(e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) && e.target.closest('li[data-id]');
  if (!li) return;
  e.preventDefault();
  const id = moving || li.dataset.id;
  const items = [...props.value];
  const from = items.findIndex(p => p.id === id);
  if (from < 0 || from + step < 0 || from + step >= items.length) return;
  items.splice(from + step, 0, items.splice(from, 1)[0]);
  props.value = items; trigger('change'); moving = id;
  setTimeout(() => { moving = null; element.querySelector(`li[data-id="${CSS.escape(id)}"]`)?.focus(); });
});
if (!window.__rrReviewKeys) {
  window.__rrReviewKeys = true;
  const keys = {a: 'rr-accept', f: 'rr-fix', r: 'rr-reject', s: 'rr-skip', n: 'rr-next'};
  document.addEventListener('keydown', e => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && t.closest && t.closest('input, textarea, select, [contenteditable="true"]')) return;
    const id = keys[e.key]; const button = id && document.getElementById(id);
    if (button && button.offsetParent !== null) { e.preventDefault(); button.click(); }
  });
}
"""
# Runs in the browser on every change of the drag list: the order box follows at once, so a save
# pressed right after a move (keys "↓ f") stores that move; a server round trip could lag behind.
ORDER_FROM_LIST_JS = "(items) => (items || []).map(item => item.id).join(', ')"


def parse_order(text: str) -> list[str]:
    """Docids from the order box: separated by commas, spaces, '>' or new lines."""
    return [part for part in text.replace(">", ",").replace("\n", ",").replace(" ", ",").split(",") if part]
