/**
 * The repos that some agent's app follows with `rollout: true`, counted per agent app and kept up
 * to date as app states arrive and are cleared. A push to any other repo (most of them, on a hub
 * with many repos) is skipped at once: deciding that by walking every agent's apps took 8 ms per
 * push at 10,000 agents, on the event loop that answers the webhooks.
 */
export class RolloutRepos {
  /** `agent\0app` → the repo it follows in a rollout. */
  private readonly byApp = new Map<string, string>();
  private readonly counts = new Map<string, number>();

  /** What `agent`'s app `app` is now; undefined once it is gone. */
  set(agent: string, app: string, state: { rollout: boolean; repo: string } | undefined): void {
    const key = `${agent}\u0000${app}`;
    const was = this.byApp.get(key);
    const now = state?.rollout ? state.repo : undefined;
    if (was === now) return;
    if (was !== undefined) {
      const left = this.counts.get(was)! - 1;
      if (left === 0) this.counts.delete(was);
      else this.counts.set(was, left);
      this.byApp.delete(key);
    }
    if (now !== undefined) {
      this.counts.set(now, (this.counts.get(now) ?? 0) + 1);
      this.byApp.set(key, now);
    }
  }

  has(repo: string): boolean {
    return this.counts.has(repo);
  }
}
