import pino, { type Logger } from 'pino';

/** JSON lines on stdout (pino), one object per event; level from config or --log-level. */
export function createLogger(level: string, name = 'ec-server'): Logger {
  return pino({ name, level, timestamp: pino.stdTimeFunctions.isoTime });
}
