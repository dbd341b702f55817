import { isIP } from 'node:net';

/** Whether a listen address reaches only this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(address: string): boolean {
  const a = address.trim().toLowerCase();
  if (a === 'localhost' || a === '::1' || a === '[::1]') return true;
  return isIP(a) === 4 && a.startsWith('127.');
}
