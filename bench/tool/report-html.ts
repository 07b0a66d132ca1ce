/**
 * The self-contained HTML report: ECharts' minified build inlined (it opens offline, from a mail or a
 * CI artifact), the chart option of report-charts.ts, the markdown report, and the raw results.
 */
import fs from 'node:fs';
import { chartHeight, chartOption, CHART_WIDTH } from './report-charts';
import { renderMarkdown } from './report-md';
import type { BenchResults } from './types';

const escapeHtml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** JSON that is safe inside <script>: no `</script>` or `<!--` can end the element early. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

export function renderHtml(res: BenchResults): string {
  const echartsJs = fs.readFileSync(require.resolve('echarts/dist/echarts.min.js'), 'utf8');
  const title = `ngrelay-bench ${res.info.date}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:16px;color:#222}pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12px}</style>
<script>${echartsJs.replace(/<\/script/gi, '<\\/script')}</script>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(`${res.info.cpuModel}, ${res.info.cores} cores, kernel ${res.info.kernel}, host ${res.info.hostname}`)}</p>
<div id="charts" style="width:${CHART_WIDTH}px;height:${chartHeight(res)}px"></div>
<h2>Report</h2>
<pre id="markdown">${escapeHtml(renderMarkdown(res))}</pre>
<script id="results" type="application/json">${scriptJson(res)}</script>
<script>
  const chart = echarts.init(document.getElementById('charts'), null, { renderer: 'canvas' });
  chart.setOption(${scriptJson(chartOption(res))});
</script>
</body></html>
`;
}
