import { Command, CommanderError, Option } from 'commander';
import { ForwardConfigError, ReceiverConfigError } from '@conduct/processor';
import { SinkConfigError } from '../alerts/sinks/index.js';
import { ConfigError, loadConfigFile, parseConfig, textsToHide, valuesFromEnvironment, type Config } from '../config/index.js';
import { createLogger, LOG_LEVELS, routeGrpcLogs, routeProcessWarnings, type LogLevel } from '../log/index.js';
import { StorageInUseError } from '../store/sqlite/lock.js';
import { CONDUCT_VERSION, startConduct } from './start.js';
import { registerReplayCommand } from '../replay/command.js';
import { registerDemoCommand } from '../demo/command.js';
import { registerMigrateCommand } from './migrate.js';

/** Exit codes of the `conduct` command. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
/** Bad configuration or command line. */
export const EXIT_USAGE = 2;

export interface ServeFlags {
  config?: string;
  grpc?: string;
  http?: string;
  api?: string;
  db?: string;
  logLevel?: LogLevel;
}

/**
 * The configuration `conduct serve` runs with: the file (or the defaults), then the flags on top.
 * Each flag is validated as the key it overrides, so errors name that key. Throws ConfigError.
 */
export function serveConfig(flags: ServeFlags): Config {
  const config = flags.config ? loadConfigFile(flags.config) : parseConfig({}, 'defaults');
  const flagValue = <T>(value: string | undefined, input: object, pick: (c: Config) => T, flag: string): T | undefined =>
    value === undefined ? undefined : pick(parseConfig(input, flag));
  const grpc = flagValue(flags.grpc, { receivers: { grpc: { endpoint: flags.grpc } } }, (c) => c.receivers.grpc.endpoint, '--grpc');
  const http = flagValue(flags.http, { receivers: { http: { endpoint: flags.http } } }, (c) => c.receivers.http.endpoint, '--http');
  const api = flagValue(flags.api, { api: { endpoint: flags.api } }, (c) => c.api.endpoint, '--api');
  const db = flagValue(flags.db, { storage: { path: flags.db } }, (c) => c.storage.path, '--db');
  if (grpc !== undefined) config.receivers.grpc.endpoint = grpc;
  if (http !== undefined) config.receivers.http.endpoint = http;
  if (api !== undefined) config.api.endpoint = api;
  if (db !== undefined) config.storage.path = db;
  if (flags.logLevel !== undefined) config.log.level = flags.logLevel;
  return config;
}

function isStartupConfigError(err: unknown): err is Error {
  return err instanceof ConfigError || err instanceof ReceiverConfigError || err instanceof ForwardConfigError || err instanceof SinkConfigError;
}

/**
 * The logger for what stops the command before its configuration is read (usage and configuration
 * errors): the same line format as the running server's, and never quieter than `error`.
 */
function failureLogger(level?: LogLevel) {
  return createLogger({ level: level === undefined || level === 'silent' ? 'error' : level });
}

/** Runs `conduct serve` until SIGTERM or SIGINT; a second signal exits at once. */
async function serve(flags: ServeFlags): Promise<number> {
  let config: Config;
  try {
    config = serveConfig(flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      failureLogger(flags.logLevel).error(`invalid configuration: ${err.message}`);
      return EXIT_USAGE;
    }
    throw err;
  }
  // Values read from environment variables (`${env:NAME}`) are shown as their reference in every line.
  const logger = createLogger({ level: config.log.level, format: config.log.format, hide: textsToHide(valuesFromEnvironment(config)) });
  routeGrpcLogs(logger);
  routeProcessWarnings(logger);
  // Signals are watched from before start-up: one that arrives while starting stops conduct as
  // soon as it has started (the default action would kill it mid-start).
  let running: Awaited<ReturnType<typeof startConduct>> | undefined;
  let stopped: (() => void) | undefined;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(EXIT_FAILURE);
    }
    logger.info({ signal }, 'signal received, shutting down');
    if (running) stopRunning(running);
  };
  const stopRunning = (r: NonNullable<typeof running>) =>
    r.stop().then(stopped, (err: unknown) => {
      logger.error({ err: String(err) }, 'shutdown failed');
      stopped?.();
    });
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    running = await startConduct(config, { logger });
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    // Configuration that only start-up can check (files it names, sinks, forwarding) is still a
    // configuration error: exit as for a bad file, with the message naming the key.
    if (isStartupConfigError(err)) {
      logger.error(`invalid configuration: ${err.message}`);
      return EXIT_USAGE;
    }
    if (err instanceof StorageInUseError) {
      // Another conduct owns this database and journal: a usage error, and nothing was touched.
      logger.error({ path: err.storagePath, lock: err.lockPath, holder: err.holder }, err.message);
      return EXIT_USAGE;
    }
    logger.error({ err: (err as Error).message }, 'conduct could not start');
    return EXIT_FAILURE;
  }
  if (signals > 0) stopRunning(running);
  await done;
  return EXIT_OK;
}

/** Entry point of the `conduct` command (argv as in process.argv). Returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let action: Promise<number> = Promise.resolve(EXIT_OK);
  const program = new Command('conduct')
    .description('Watch the runtime conduct of non-human identities from their OpenTelemetry traces')
    .version(CONDUCT_VERSION, '-v, --version', 'print the version and exit')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      // Usage errors (unknown flag, missing value) as log lines, like every other error.
      outputError: (s) => failureLogger().error(s.trim()),
    });

  program
    .command('serve')
    .description('receive OTLP traces, store chains, detect, and serve the API and UI')
    .addOption(new Option('-c, --config <file>', 'YAML configuration file'))
    .addOption(new Option('--grpc <host:port>', 'OTLP/gRPC listen address (receivers.grpc.endpoint; "" disables)'))
    .addOption(new Option('--http <host:port>', 'OTLP/HTTP listen address (receivers.http.endpoint; "" disables)'))
    .addOption(new Option('--api <host:port>', 'API and UI listen address (api.endpoint)'))
    .addOption(new Option('--db <path>', 'SQLite database file (storage.path)'))
    .addOption(new Option('--log-level <level>', 'lowest level logged (log.level)').choices(LOG_LEVELS))
    .action((flags: ServeFlags) => {
      action = serve(flags);
    });

  registerReplayCommand(
    program,
    { configOf: serveConfig, exit: { ok: EXIT_OK, failure: EXIT_FAILURE, usage: EXIT_USAGE } },
    (p) => {
      action = p;
    },
  );

  registerDemoCommand(program, { exit: { ok: EXIT_OK, failure: EXIT_FAILURE, usage: EXIT_USAGE } }, (p) => {
    action = p;
  });

  registerMigrateCommand(program, { exit: { ok: EXIT_OK, failure: EXIT_FAILURE, usage: EXIT_USAGE } }, (p) => {
    action = p;
  });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors were already printed by commander.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    throw err;
  }
  return action;
}
