import { Option, type Command } from 'commander';
import { ConfigError, type Config, textsToHide, valuesFromEnvironment } from '../config/index.js';
import { createLogger } from '../log/index.js';
import { StorageInUseError } from '../store/sqlite/lock.js';
import { formatReplaySummary, replayFiles, type ReplayProgress } from './replay.js';
import type { RequestFormat } from './read-requests.js';
import { AUDIT_FORMATS, type AuditFormat } from './read-audit.js';

export interface ReplayFlags {
  config?: string;
  db?: string;
  format?: RequestFormat | AuditFormat;
  deliver?: boolean;
  progress?: boolean;
}

/** What the command needs from the CLI: how `serve` builds its configuration, exit codes, output. */
export interface ReplayCommandDeps {
  /** `serve`'s configuration from `--config` and `--db` (throws ConfigError). */
  configOf(flags: { config?: string; db?: string }): Config;
  exit: { ok: number; failure: number; usage: number };
  /** Where the summary goes (stdout) and where progress and errors go (stderr). */
  out?: (s: string) => void;
  err?: (s: string) => void;
}

function progressLine(p: ReplayProgress): string {
  const mib = (p.bytes / (1024 * 1024)).toFixed(1);
  return `replay: file ${p.fileIndex + 1}/${p.files} ${p.file}: ${p.requests} requests, ${p.spans} spans, ${mib} MiB read, ${p.alerts} alerts so far\n`;
}

/** Runs `conduct replay FILE...`; resolves with the exit code. */
export async function runReplay(files: string[], flags: ReplayFlags, deps: ReplayCommandDeps): Promise<number> {
  const out = deps.out ?? ((s: string) => void process.stdout.write(s));
  const err = deps.err ?? ((s: string) => void process.stderr.write(s));
  let config: Config;
  try {
    config = deps.configOf({ config: flags.config, db: flags.db });
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`conduct: invalid configuration: ${e.message}\n`);
      return deps.exit.usage;
    }
    throw e;
  }
  // Logs are for operators of `serve`; a replay reports on stderr and prints its summary.
  const logger = createLogger({
    level: config.log.level === 'info' ? 'warn' : config.log.level,
    format: config.log.format,
    hide: textsToHide(valuesFromEnvironment(config)),
  });
  try {
    const summary = await replayFiles({
      config,
      files,
      logger,
      deliver: flags.deliver === true,
      ...(flags.format ? { format: flags.format } : {}),
      ...(flags.progress === false ? {} : { onProgress: (p: ReplayProgress) => err(progressLine(p)) }),
    });
    out(`${formatReplaySummary(summary)}\n`);
    return summary.requests === 0 && summary.badRequests > 0 ? deps.exit.failure : deps.exit.ok;
  } catch (e) {
    err(`conduct replay: ${(e as Error).message}\n`);
    return e instanceof StorageInUseError ? deps.exit.usage : deps.exit.failure;
  }
}

/** Adds `replay FILE...` to the CLI; `setAction` receives the running command's exit code. */
export function registerReplayCommand(program: Command, deps: ReplayCommandDeps, setAction: (p: Promise<number>) => void): void {
  program
    .command('replay')
    .description('process OTLP trace request files (JSON, JSON lines or protobuf) or audit logs (CloudTrail, Kubernetes) in event time and print the alerts')
    .argument('<files...>', 'request files: one request per .json/.pb file, or one JSON request per line (.jsonl); with --format cloudtrail|k8s-audit, audit log files')
    .addOption(new Option('-c, --config <file>', 'YAML configuration file (the same as serve)'))
    .addOption(new Option('--db <path>', 'SQLite database file (storage.path)'))
    .addOption(new Option('--format <format>', 'read every file as this format instead of detecting it').choices(['json', 'jsonl', 'protobuf', ...AUDIT_FORMATS]))
    .addOption(new Option('--deliver', 'also deliver alerts to alerts.sinks'))
    .addOption(new Option('--no-progress', 'do not report progress on stderr'))
    .action((files: string[], flags: ReplayFlags) => {
      setAction(runReplay(files, flags, deps));
    });
}
