/**
 * The self-contained HTML report: ECharts' minified build inlined (it opens offline, from a mail or a
 * CI artifact), the chart option of report-charts.ts, the report's blocks (report-md.ts reportBlocks, the
 * same content as the markdown: its tables as HTML tables, sortable by a click on a column head), and the
 * raw results.
 */
import fs from 'node:fs';
import { chartHeight, chartOption, CHART_WIDTH } from './report-charts';
import { ReportBlock, reportBlocks, ReportTable } from './report-md';
import type { BenchResults } from './types';

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** JSON that is safe inside <script>: no `</script>` or `<!--` can end the element early. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');
/** Report text: escaped, markdown's `inline code` as <code>. */
const inline = (s: string): string => escapeHtml(s).replace(/`([^`]+)`/g, '<code>$1</code>');

function tableHtml(t: ReportTable): string {
  const head = t.head.map((h, i) => `<th data-col="${i}">${inline(h)}</th>`).join('');
  const body = t.rows.map((cells) => `<tr>${cells.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table id="${escapeHtml(t.id)}" class="sortable"><thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

function blockHtml(b: ReportBlock): string {
  switch (b.kind) {
    case 'heading':
      return `<h${b.level}>${inline(b.text)}</h${b.level}>`;
    case 'list':
      return `<ul>\n${b.items.map((item) => `<li>${inline(item)}</li>`).join('\n')}\n</ul>`;
    case 'table':
      return tableHtml(b.table);
    case 'paragraph':
      return `<p class="notes">${b.lines.map(inline).join('<br>\n')}</p>`;
  }
}

/**
 * Click on a column head: sort the rows by that column (again: the other way). Cells are compared as
 * numbers where they start with one (`10.0k` = 10000, `max 300k` = 300000), as text otherwise; `n/a` and
 * `—` sort last either way.
 */
const SORT_SCRIPT = `
for (const table of document.querySelectorAll('table.sortable')) {
  table.querySelectorAll('th').forEach((th, col) => {
    th.addEventListener('click', () => {
      const up = th.dataset.sorted !== 'up';
      table.querySelectorAll('th').forEach((other) => delete other.dataset.sorted);
      th.dataset.sorted = up ? 'up' : 'down';
      const key = (tr) => {
        const text = tr.cells[col].textContent.trim();
        const m = /^(?:max )?([+-]?[\\d.]+)(k?)/.exec(text);
        return m ? { n: Number(m[1]) * (m[2] ? 1000 : 1) } : text === 'n/a' || text === '—' || text === '' ? null : { s: text };
      };
      const body = table.tBodies[0];
      const rows = [...body.rows].map((tr, i) => ({ tr, i, k: key(tr) }));
      rows.sort((a, b) => {
        if (a.k === null || b.k === null) return a.k === b.k ? a.i - b.i : a.k === null ? 1 : -1;
        const d = 'n' in a.k && 'n' in b.k ? a.k.n - b.k.n : String(a.k.n ?? a.k.s).localeCompare(String(b.k.n ?? b.k.s));
        return (up ? d : -d) || a.i - b.i;
      });
      for (const r of rows) body.appendChild(r.tr);
    });
  });
}`;

const STYLE = [
  'body{font-family:system-ui,sans-serif;margin:16px;color:#222}',
  'table{border-collapse:collapse;font-size:12px;margin:8px 0}',
  'th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}',
  'td:first-child,th:first-child{text-align:left}',
  'th{background:#f0f0f0;cursor:pointer;user-select:none}',
  'th[data-sorted=up]::after{content:" ▲"}th[data-sorted=down]::after{content:" ▼"}',
  'tbody tr:nth-child(even){background:#fafafa}',
  'code{background:#f3f3f3;padding:0 3px}',
  '.notes{font-size:12px;color:#555}',
].join('');

export function renderHtml(res: BenchResults): string {
  const echartsJs = fs.readFileSync(require.resolve('echarts/dist/echarts.min.js'), 'utf8');
  const title = `ngrelay-bench ${res.info.date}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
<script>${echartsJs.replace(/<\/script/gi, '<\\/script')}</script>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(`${res.info.cpuModel}, ${res.info.cores} cores, kernel ${res.info.kernel}, host ${res.info.hostname}`)}</p>
<div id="charts" style="width:${CHART_WIDTH}px;height:${chartHeight(res)}px"></div>
<div id="report">
${reportBlocks(res).map(blockHtml).join('\n')}
</div>
<script id="results" type="application/json">${scriptJson(res)}</script>
<script>
  const chart = echarts.init(document.getElementById('charts'), null, { renderer: 'canvas' });
  chart.setOption(${scriptJson(chartOption(res))});
${SORT_SCRIPT}
</script>
</body></html>
`;
}
