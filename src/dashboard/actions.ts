import { ApiFailure } from './api.js';
import { byId, h } from './dom.js';

/**
 * An operator's action: a button that asks first (a modal dialog, Escape or Cancel keeps things
 * as they are), then runs and says what the hub answered. Shown only to operators; the API
 * refuses viewers anyway.
 */
export function actionButton(label: string, question: string, run: () => Promise<unknown>, danger = false): HTMLButtonElement {
  const button = h('button', { class: danger ? 'action danger' : 'action', attrs: { type: 'button' } }, label);
  button.addEventListener('click', () => {
    void confirmThen(question, button, run);
  });
  return button;
}

async function confirmThen(question: string, button: HTMLButtonElement, run: () => Promise<unknown>): Promise<void> {
  if (!(await confirmed(question))) return button.focus();
  button.disabled = true;
  try {
    await run();
    toast(`${question.replace(/\?$/, '')}: requested`);
  } catch (err) {
    toast(err instanceof ApiFailure ? `Refused (${err.status}): ${err.message}` : String(err), true);
  } finally {
    button.disabled = false;
    if (button.isConnected) button.focus();
  }
}

function confirmed(question: string): Promise<boolean> {
  const dialog = byId<HTMLDialogElement>('confirm');
  byId('confirm-text').textContent = question;
  dialog.returnValue = '';
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }));
}

let toastTimer: number | undefined;

/** A short message in the page's status line (read out by screen readers). */
export function toast(text: string, error = false): void {
  const line = byId('toast');
  line.textContent = text;
  line.classList.toggle('error', error);
  line.classList.add('shown');
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => line.classList.remove('shown'), 6000);
}
