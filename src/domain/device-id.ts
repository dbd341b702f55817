/** Device ids as the body grammar allows them (docs/protocol.md): 1-64 of [A-Za-z0-9._:-]. */
export const DEVICE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}
