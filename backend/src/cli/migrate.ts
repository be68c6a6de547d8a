import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { silentLogger, type Logger } from '@conduct/processor';
import { copyStorage, type CopyResult } from '../store/copy.js';
import { openStorage, type StorageBackend } from '../store/index.js';
import { lockStorage, StorageInUseError } from '../store/sqlite/lock.js';

export interface MigrateFlags {
  from: string;
  to: string;
  chains?: boolean;
}

export interface MigrateCommandDeps {
  exit: { ok: number; failure: number; usage: number };
  out?: (s: string) => void;
  err?: (s: string) => void;
  logger?: Logger;
}

/** A storage named on the command line: `sqlite:PATH` or `postgres:postgres://...` (the URL alone too). */
type Location = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

export function parseLocation(value: string): Location | undefined {
  if (value.startsWith('sqlite:')) {
    const path = value.slice('sqlite:'.length);
    return path ? { kind: 'sqlite', path } : undefined;
  }
  const url = value.startsWith('postgres:') && !value.startsWith('postgres://') ? value.slice('postgres:'.length) : value;
  return /^postgres(ql)?:\/\/./.test(url) ? { kind: 'postgres', url } : undefined;
}

function describe(location: Location): string {
  if (location.kind === 'sqlite') return `sqlite:${location.path}`;
  try {
    const u = new URL(location.url);
    if (u.password) u.password = '***';
    return `postgres:${u.toString()}`;
  } catch {
    return 'postgres:(URL)';
  }
}

async function open(location: Location, logger: Logger): Promise<StorageBackend> {
  return location.kind === 'sqlite'
    ? openStorage({ path: location.path }, { logger })
    : openStorage({ path: ':memory:', postgres: { url: location.url } }, { logger });
}

function summary(r: CopyResult): string {
  return `copied ${r.baselines} baselines (${r.baselineEntries} entries), ${r.suppressions} suppressions, ${r.alerts} alerts (${r.heldChains} held chains, ${r.pendingDeliveries} pending deliveries), ${r.chains} chains, ${r.traces} trace summaries, ${r.pathParameters} learned path parameters`;
}

/**
 * `conduct migrate --from sqlite:PATH --to postgres:URL`: copies an installation's baselines,
 * suppressions, alerts and chains into another backend (store/copy.ts) while no conduct runs on
 * the source (its lock is taken, as serve takes it).
 */
export async function runMigrate(flags: MigrateFlags, deps: MigrateCommandDeps): Promise<number> {
  const out = deps.out ?? ((s: string) => void process.stdout.write(s));
  const err = deps.err ?? ((s: string) => void process.stderr.write(s));
  const from = parseLocation(flags.from);
  const to = parseLocation(flags.to);
  if (!from || !to) {
    err(`conduct migrate: --from and --to take sqlite:PATH or postgres:postgres://USER:PASSWORD@HOST:PORT/DATABASE (got ${!from ? '--from' : '--to'} "${!from ? flags.from : '(hidden)'}")\n`);
    return deps.exit.usage;
  }
  if (from.kind === 'sqlite' && !existsSync(from.path)) {
    err(`conduct migrate: ${from.path}: no such database\n`);
    return deps.exit.usage;
  }
  const logger = deps.logger ?? silentLogger;
  const locks = [from, to].flatMap((l) => (l.kind === 'sqlite' ? [l.path] : []));
  const held: Array<{ release(): void }> = [];
  let source: StorageBackend | undefined;
  let target: StorageBackend | undefined;
  try {
    for (const path of locks) held.push(lockStorage(path, { command: 'migrate' }));
    source = await open(from, logger);
    target = await open(to, logger);
    err(`conduct migrate: ${describe(from)} -> ${describe(to)}\n`);
    const result = await copyStorage(source, target, { chains: flags.chains !== false, logger });
    out(`${summary(result)}\n`);
    return deps.exit.ok;
  } catch (e) {
    err(`conduct migrate: ${(e as Error).message}\n`);
    return e instanceof StorageInUseError ? deps.exit.usage : deps.exit.failure;
  } finally {
    await target?.close().catch(() => undefined);
    await source?.close().catch(() => undefined);
    for (const lock of held) lock.release();
  }
}

export function registerMigrateCommand(program: Command, deps: MigrateCommandDeps, setAction: (p: Promise<number>) => void): void {
  program
    .command('migrate')
    .description('copy baselines, alerts and chains from one storage to another (e.g. an SQLite installation into PostgreSQL)')
    .addOption(new Option('--from <storage>', 'source: sqlite:PATH (or postgres:URL)').makeOptionMandatory())
    .addOption(new Option('--to <storage>', 'target, empty: postgres:postgres://USER:PASSWORD@HOST:PORT/DATABASE (or sqlite:PATH)').makeOptionMandatory())
    .addOption(new Option('--no-chains', 'copy baselines and alerts only, not the stored chains'))
    .action((flags: MigrateFlags) => {
      setAction(runMigrate(flags, deps));
    });
}
