import { ApiFailure, type ApiClient } from './api.js';
import { append, byId, note, type Child } from './dom.js';
import type { Change } from './live.js';

export type ViewContext = { api: ApiClient; operator: boolean };

/** One section of the page: the element it fills, the hub areas whose changes it shows, how it loads. */
export type View = { section: string; areas: readonly string[]; load(ctx: ViewContext): Promise<Child[]> };

/** A section is loaded again at most this often, however fast its area changes (a large fleet's heartbeats). */
const MIN_GAP_MS = 1000;

/**
 * The sections on the page, each reloaded when a notice names one of its areas. A section loads
 * once at a time, and not again within MIN_GAP_MS: notices arriving meanwhile make one more load
 * afterwards, not one each.
 */
export class Board {
  private readonly loading = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  constructor(
    private readonly views: readonly View[],
    private readonly ctx: ViewContext,
  ) {}

  refreshAll(): Promise<void> {
    return Promise.all(this.views.map((v) => this.refresh(v))).then(() => undefined);
  }

  changed(change: Change | 'all'): void {
    if (change === 'all') return void this.refreshAll();
    for (const view of this.views) if (view.areas.includes(change.area)) void this.refresh(view);
  }

  /** Loads the section now, or once its load under way and the gap after it are over; resolves when its content is shown. */
  private refresh(view: View): Promise<void> {
    const busy = this.loading.get(view.section);
    if (busy) {
      this.again.add(view.section);
      return busy;
    }
    const shown = this.load(view);
    const busyUntil = shown
      .then(() => new Promise((resolve) => window.setTimeout(resolve, MIN_GAP_MS)))
      .finally(() => {
        this.loading.delete(view.section);
        if (this.again.delete(view.section)) void this.refresh(view);
      });
    this.loading.set(view.section, busyUntil.then(() => undefined));
    return shown;
  }

  private async load(view: View): Promise<void> {
    const body = byId(view.section).querySelector('.body')!;
    let content: Child[];
    try {
      content = await view.load(this.ctx);
    } catch (err) {
      // An engine switched off (503) or a route this hub lacks (404) is a fact, not a fault.
      content = [note(refusal(err), err instanceof ApiFailure && (err.status === 503 || err.status === 404) ? 'muted' : 'error')];
    }
    const fragment = document.createDocumentFragment();
    append(fragment, content);
    body.replaceChildren(fragment);
    byId(view.section).setAttribute('data-loaded', String(Date.now()));
  }
}

function refusal(err: unknown): string {
  if (!(err instanceof ApiFailure)) return `could not show this: ${String(err)}`;
  if (err.status === 404) return 'not offered by this hub (its API has no such route, or the engine is off)';
  return `${err.message} (HTTP ${err.status || 'unreachable'})`;
}
