// Calls to ec-server's read API from the dashboard. When the server requires a bearer token (http.tokens), the
// first 401 opens the token dialog; the token is kept in sessionStorage (this tab only, gone when it closes)
// and sent as `Authorization: Bearer` with every call.

const TOKEN_KEY = 'ec-server.token';

/**
 * A failed API call: an Error with the HTTP status. (Not a subclass of Error: the server's errors all derive
 * from src/errors.ts's EcError, which this browser code does not import.)
 */
export type ApiError = Error & { status: number };

export function apiError(status: number, message: string): ApiError {
  return Object.assign(new Error(message), { status });
}

export function isApiError(e: unknown): e is ApiError {
  return e instanceof Error && typeof (e as Partial<ApiError>).status === 'number';
}

function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: ask every time
  }
}

function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // storage disabled: the token lives as long as the page
  }
}

let pageToken: string | null = storedToken();
/** One dialog at a time: concurrent 401s wait for the same answer. */
let asking: Promise<string | null> | undefined;

/** The token dialog, added to the page the first time it is needed (a modal <dialog>: focus kept inside). */
function tokenDialog(): HTMLDialogElement {
  const existing = document.getElementById('token-dialog');
  if (existing) return existing as HTMLDialogElement;
  const el = (tag: string, attrs: Record<string, string> = {}, text = ''): HTMLElement => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    e.textContent = text;
    return e;
  };
  const dialog = el('dialog', { id: 'token-dialog', 'aria-labelledby': 'token-title' }) as HTMLDialogElement;
  const form = el('form', { method: 'dialog' });
  const actions = el('div', { class: 'actions' });
  actions.append(
    el('button', { type: 'submit' }, 'Use token'),
    el('button', { type: 'button', id: 'token-cancel' }, 'Cancel'),
  );
  form.append(
    el('h2', { id: 'token-title' }, 'Bearer token'),
    el('p', { id: 'token-reason' }),
    el('label', { for: 'token-input' }, 'Token'),
    el('input', { id: 'token-input', type: 'password', autocomplete: 'off', required: '' }),
    actions,
  );
  dialog.append(form);
  document.body.append(dialog);
  return dialog;
}

/** Asks for a token with the token dialog; null when cancelled. */
function askToken(reason: string): Promise<string | null> {
  return (asking ??= new Promise<string | null>((resolve) => {
    const dialog = tokenDialog();
    const form = dialog.querySelector('form')!;
    const input = dialog.querySelector<HTMLInputElement>('#token-input')!;
    const why = dialog.querySelector<HTMLElement>('#token-reason')!;
    why.textContent = reason;
    input.value = '';
    const done = (token: string | null) => {
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      asking = undefined;
      resolve(token);
    };
    const onSubmit = (e: Event) => {
      e.preventDefault();
      const token = input.value.trim();
      if (token !== '') done(token);
    };
    const onCancel = () => done(null);
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    dialog.querySelector('#token-cancel')?.addEventListener('click', onCancel, { once: true });
    dialog.showModal();
    input.focus();
  }));
}

/** Forgets the token (the "Sign out" button). */
export function forgetToken(): void {
  pageToken = null;
  storeToken(null);
}

/**
 * GET `path` as JSON, with the bearer token when one is known; on 401 asks for one and tries again. Any other
 * failure is an ApiError with the server's message (400 `{ error, message }`, 404, text).
 */
export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (pageToken !== null) headers.Authorization = `Bearer ${pageToken}`;
    const res = await fetch(path, { headers, signal: signal ?? null, cache: 'no-store' });
    if (res.status === 401 && attempt < 5) {
      const token = await askToken(
        attempt === 0 && pageToken === null
          ? 'This server requires a bearer token (http.tokens).'
          : 'The token was refused. Enter another one.',
      );
      if (token === null) throw apiError(401, 'a bearer token is required');
      pageToken = token;
      storeToken(token);
      continue;
    }
    if (!res.ok) throw apiError(res.status, await errorText(res));
    return (await res.json()) as T;
  }
}

async function errorText(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { message?: string; error?: string };
    return body.message ?? body.error ?? text;
  } catch {
    return text.trim() || `HTTP ${res.status}`;
  }
}
