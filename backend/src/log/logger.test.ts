import { describe, expect, it } from 'vitest';
import { createLogger, formatConsoleLine, resolveLogFormat } from './index.js';

/** A destination that keeps what the logger wrote. */
function collect() {
  const lines: string[] = [];
  return { lines, destination: { write: (s: string) => void lines.push(s) } };
}

describe('logger', () => {
  it('writes JSON with the level as a name and the time in ISO 8601', () => {
    const out = collect();
    const logger = createLogger({ level: 'debug', format: 'json', destination: out.destination });
    logger.debug({ db: '/var/lib/conduct/conduct.db' }, 'opened');
    logger.warn('careful');
    const [first, second] = out.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(first).toMatchObject({ level: 'debug', name: 'conduct', msg: 'opened', db: '/var/lib/conduct/conduct.db' });
    expect(second).toMatchObject({ level: 'warn', msg: 'careful' });
    expect(first!['time']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Date.parse(first!['time'] as string)).not.toBeNaN();
  });

  it('auto is console on a terminal and JSON otherwise', () => {
    expect(resolveLogFormat('auto', true)).toBe('console');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('console', false)).toBe('console');

    const tty = collect();
    createLogger({ destination: tty.destination, isTTY: true }).info({ port: 4317 }, 'listening');
    expect(tty.lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  listening port=4317\n$/);
    const pipe = collect();
    createLogger({ destination: pipe.destination, isTTY: false }).info({ port: 4317 }, 'listening');
    expect(JSON.parse(pipe.lines[0]!)).toMatchObject({ level: 'info', msg: 'listening', port: 4317 });
  });

  it('keeps a console line on one line and quotes values that are not plain words', () => {
    const line = formatConsoleLine(
      JSON.stringify({ level: 'error', time: '2026-12-06T10:00:00.000Z', name: 'conduct', msg: 'failed', err: 'line one\nline two', path: '/tmp/a.db', n: { a: 1 } }),
    );
    expect(line).toBe('2026-12-06T10:00:00.000Z ERROR failed err="line one\\nline two" path=/tmp/a.db n={"a":1}\n');
  });

  it('writes nothing below its level', () => {
    const out = collect();
    const logger = createLogger({ level: 'warn', format: 'json', destination: out.destination });
    logger.info('quiet');
    logger.error('loud');
    expect(out.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['loud']);
  });
});
