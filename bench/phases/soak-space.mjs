// Where the soak's SQLite database spends its pages: per table (its indexes included), free pages
// and the WAL file, read from the running server's file (read only) by the store's dbstat report.
import { existsSync, statSync } from 'node:fs';
import { readSpaceReport } from '../../backend/dist/store/sqlite/space.js';

const MB = 1e6;

/** {tablesMB: {table: MB}, freeMB, walMB} of the database file at `path`. */
export function sampleSpace(path) {
  const report = readSpaceReport(path);
  const tablesMB = {};
  for (const o of report.objects) tablesMB[o.table] = (tablesMB[o.table] ?? 0) + o.bytes / MB;
  return {
    tablesMB,
    freeMB: (report.freePages * report.pageSize) / MB,
    walMB: existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size / MB : 0,
  };
}

/** The largest tables of a sample, for the progress log. */
export function spaceLine(sample) {
  if (!sample.tablesMB) return '';
  const top = Object.entries(sample.tablesMB).sort((a, b) => b[1] - a[1]).slice(0, 5);
  return ` (${top.map(([t, mb]) => `${t} ${mb.toFixed(1)}`).join(', ')}, free ${sample.freeMB.toFixed(1)}, wal ${sample.walMB.toFixed(1)} MB)`;
}

/** Report rows: each table's MB at the first settled sample and the last, largest first. */
export function spaceRows(first, last, fmt) {
  if (!first?.tablesMB || !last?.tablesMB) return [];
  const names = [...new Set([...Object.keys(first.tablesMB), ...Object.keys(last.tablesMB)])];
  const rows = names
    .map((t) => [first.tablesMB[t] ?? 0, last.tablesMB[t] ?? 0, t])
    .filter(([a, b]) => Math.max(a, b) >= 0.05)
    .sort((x, y) => y[1] - x[1])
    .map(([a, b, t]) => [`  soak: ${t} MB (with its indexes), first settled / last sample`, `${fmt(a, 1)} / ${fmt(b, 1)}`, '', '']);
  rows.push(['  soak: free pages MB, first settled / last sample', `${fmt(first.freeMB, 1)} / ${fmt(last.freeMB, 1)}`, '', '']);
  rows.push(['  soak: WAL file MB, first settled / last sample', `${fmt(first.walMB, 1)} / ${fmt(last.walMB, 1)}`, '', '']);
  return rows;
}
