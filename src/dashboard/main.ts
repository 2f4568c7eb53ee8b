import { ApiClient, ApiFailure, type Caller } from './api.js';
import { Board } from './board.js';
import { byId } from './dom.js';
import { LiveStream, type LiveState } from './live.js';
import { VIEWS } from './views.js';

/** The token lives in this tab's session storage: gone when the tab closes, never in a cookie or URL. */
const TOKEN_KEY = 'pushfleet.token';

let stream: LiveStream | undefined;

function showLogin(message = ''): void {
  stream?.close();
  stream = undefined;
  byId('board').hidden = true;
  byId('logout').hidden = true;
  byId('who').textContent = '';
  byId('live').textContent = '';
  const form = byId<HTMLFormElement>('login');
  form.hidden = false;
  byId('login-error').textContent = message;
  byId<HTMLInputElement>('token').focus();
}

async function start(token: string): Promise<void> {
  const api = new ApiClient(token);
  let board: Board | undefined;
  const live = new LiveStream(api, (change) => board?.changed(change), (state, detail) => showLive(state, detail));
  let caller: Caller;
  try {
    caller = await live.open();
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    return showLogin(err instanceof ApiFailure && err.status === 401 ? `Token refused: ${err.message}` : err instanceof Error ? err.message : String(err));
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  stream = live;
  board = new Board(VIEWS, { api, operator: caller.role === 'operator' });
  byId('login').hidden = true;
  byId('board').hidden = false;
  byId('logout').hidden = false;
  byId('who').textContent = `${caller.name} (${caller.role})`;
  document.body.dataset.role = caller.role;
  // The sign-in form had the focus: a keyboard user goes on from the top of the board.
  byId('main').focus();
  await board.refreshAll();
  document.body.dataset.ready = 'true';
}

function showLive(state: LiveState, detail?: string): void {
  const line = byId('live');
  line.dataset.state = state;
  line.textContent = state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : 'stream refused';
  line.title = detail ?? '';
  if (state === 'refused') {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(`The hub no longer takes this token${detail ? `: ${detail}` : ''}`);
  }
}

byId<HTMLFormElement>('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>('token');
  const token = input.value.trim();
  input.value = '';
  byId('login-error').textContent = '';
  if (token) void start(token);
});

byId('logout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  delete document.body.dataset.ready;
  showLogin();
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) void start(saved);
else showLogin();
