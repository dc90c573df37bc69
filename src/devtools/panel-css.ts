/** The devtools panel's styles, inside its shadow root (panel.ts). */
export const PANEL_CSS = `
:host { all: initial; display: block; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace;
  color: #1b2430; background: #fbfcfe; border: 1px solid #c9d3df; border-radius: 6px; }
section { padding: 8px; }
header { display: flex; flex-wrap: wrap; gap: 4px 12px; align-items: baseline; }
header p { margin: 0; }
.status[data-state="idle"] { color: #1d7a3a; }
.status[data-state="offline"], .status[data-state="connecting"] { color: #9a5b00; }
h2 { font-size: 12px; margin: 10px 0 4px; text-transform: uppercase; letter-spacing: 0.05em; }
h3 { font-size: 12px; margin: 6px 0 2px; }
.tools { display: flex; gap: 8px; align-items: center; }
input { font: inherit; padding: 2px 4px; min-width: 16rem; }
.viewport { height: 18rem; overflow: auto; margin: 4px 0; border: 1px solid #e1e7ef; }
.events { list-style: none; margin: 0; padding: 0; position: relative; }
.events li { position: absolute; left: 0; right: 0; height: 18px; box-sizing: border-box;
  display: grid; grid-template-columns: 7rem 1fr 2fr 8rem 5rem; gap: 8px; padding: 1px 4px;
  cursor: pointer; }
.events li:nth-child(odd) { background: #f1f4f8; }
.events li.selected, .events li:focus { background: #dbe8ff; outline: none; }
.events span { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.type { font-weight: 600; }
pre { margin: 4px 0; padding: 4px; background: #f1f4f8; max-height: 14rem; overflow: auto;
  white-space: pre-wrap; word-break: break-word; }
.detail:empty { display: none; }
.conflicts { margin: 4px 0; padding-left: 16px; }
.tree details { margin-left: 12px; }
.tree > details { margin-left: 0; }
.tree .leaf { margin-left: 12px; white-space: pre-wrap; word-break: break-word; }
.tree summary { cursor: pointer; }
.history { margin: 4px 0; padding-left: 16px; max-height: 8rem; overflow: auto; color: #3d4b5c; }
.none { color: #5c6b7c; }
.sync { color: #9a5b00; }
.check { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: 2px 0 6px; }
.check pre { flex-basis: 100%; }
.then:empty { display: none; }
`;
