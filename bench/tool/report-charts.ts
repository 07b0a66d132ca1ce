/**
 * The charts of a run, as one ECharts option: per call count a row of three panels (CPU-µs per packet,
 * loss %, one-way latency p50 solid / p99 dashed, log scale) against the offered rate, one series per
 * forwarder; the CPU panel plots total CPU-µs per packet (process + NET_RX softirq) for every step the
 * softirq meter measured, and says so in its title. The same option drives the interactive HTML report (canvas, in the browser) and the SVG
 * rendered here in Node (ECharts server-side rendering), so the two cannot disagree.
 */
import * as echarts from 'echarts';
import type { EChartsOption, SeriesOption } from 'echarts';
import { rowFigures } from './report-md';
import type { BenchResults, StepRow } from './types';

const PANEL_HEIGHT = 300;
const TOP = 90;
export const CHART_WIDTH = 1500;

/** A fixed palette, one colour per forwarder in order of appearance, the same in every panel. */
const PALETTE = ['#d94e2b', '#2b6cd9', '#3a9e4f', '#9b59b6', '#e0a526', '#17a2b8', '#6c757d', '#c2185b', '#5d4037', '#00897b'];

export function chartHeight(res: BenchResults): number {
  return TOP + callCounts(res).length * (PANEL_HEIGHT + 70) + 20;
}

const callCounts = (res: BenchResults): number[] => [...new Set(res.rows.map((x) => x.calls))].sort((a, b) => a - b);

const kpps = (x: StepRow): number => Math.round(x.r.offered_pps / 100) / 10;

export function chartOption(res: BenchResults): EChartsOption {
  const names = [...new Set(res.rows.map((x) => x.name))];
  const color = (name: string): string => PALETTE[names.indexOf(name) % PALETTE.length] ?? '#000';
  const grids: NonNullable<EChartsOption['grid']> = [];
  const xAxes: NonNullable<EChartsOption['xAxis']> = [];
  const yAxes: NonNullable<EChartsOption['yAxis']> = [];
  const titles: NonNullable<EChartsOption['title']> = [
    { text: `ngrelay-bench ${res.info.date.slice(0, 16).replace('T', ' ')} UTC — ${res.info.cpuModel}, ${res.info.cores} cores`, left: 10, top: 5, textStyle: { fontSize: 15 } },
  ];
  const series: SeriesOption[] = [];
  const metered = res.rows.filter((x) => Number.isFinite(rowFigures(x).totalUs)).length;
  const withCpu = res.rows.filter((x) => Number.isFinite(rowFigures(x).usPerPacket)).length;
  const cpuTitle =
    metered === 0
      ? 'CPU-µs per forwarded packet (process; softirq not measured)'
      : metered === withCpu
        ? 'total CPU-µs per forwarded packet (process + softirq)'
        : 'CPU-µs per forwarded packet (total with softirq where measured)';
  const panels = [
    { title: cpuTitle, log: false },
    { title: 'loss %', log: false },
    { title: 'one-way latency µs (p50 solid, p99 dashed)', log: true },
  ];
  const width = (CHART_WIDTH - 80) / 3;
  callCounts(res).forEach((calls, row) => {
    panels.forEach((panel, col) => {
      const index = row * panels.length + col;
      const top = TOP + row * (PANEL_HEIGHT + 70);
      const left = 50 + col * width;
      grids.push({ left, top, width: width - 70, height: PANEL_HEIGHT - 40, containLabel: false });
      titles.push({ text: `${panel.title} — ${calls} call${calls > 1 ? 's' : ''}`, left, top: top - 28, textStyle: { fontSize: 12 } });
      xAxes.push({ type: 'value', gridIndex: index, name: 'offered kpps', nameLocation: 'middle', nameGap: 24, min: 0 });
      yAxes.push(panel.log ? { type: 'log', gridIndex: index, logBase: 10 } : { type: 'value', gridIndex: index, min: 0 });
      for (const name of names) {
        const steps = res.rows.filter((x) => x.name === name && x.calls === calls).sort((a, b) => a.r.offered_pps - b.r.offered_pps);
        if (!steps.length) continue;
        const line = (data: [number, number][], dashed = false): SeriesOption => ({
          type: 'line',
          name,
          xAxisIndex: index,
          yAxisIndex: index,
          data,
          symbolSize: 5,
          color: color(name),
          lineStyle: { color: color(name), width: 2, type: dashed ? 'dashed' : 'solid' },
          itemStyle: { color: color(name) },
        });
        if (col === 0) {
          const points = steps.flatMap((x): [number, number][] => {
            const f = rowFigures(x);
            const us = Number.isFinite(f.totalUs) ? f.totalUs : f.usPerPacket;
            return Number.isFinite(us) ? [[kpps(x), Math.round(us * 100) / 100]] : [];
          });
          if (points.length) series.push(line(points));
        } else if (col === 1) {
          series.push(line(steps.map((x): [number, number] => [kpps(x), Math.round(x.r.loss_pct * 100) / 100])));
        } else {
          const seen = steps.filter((x) => x.r.received > 0 && x.r.lat_p50_us > 0);
          series.push(line(seen.map((x): [number, number] => [kpps(x), x.r.lat_p50_us])));
          series.push(line(seen.map((x): [number, number] => [kpps(x), Math.max(1, x.r.lat_p99_us)]), true));
        }
      }
    });
  });
  return {
    animation: false,
    backgroundColor: '#ffffff',
    title: titles,
    legend: { top: 30, left: 10, data: names },
    tooltip: { trigger: 'item' },
    grid: grids,
    xAxis: xAxes,
    yAxis: yAxes,
    series,
  };
}

/** The charts as a standalone SVG (README, docs), rendered in Node without a browser. */
export function renderSvg(res: BenchResults): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: CHART_WIDTH, height: chartHeight(res) });
  try {
    chart.setOption(chartOption(res));
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
