import { topicMatches } from '../../../shared/topic-match.js';
import { JOB_NAME, type JobRow } from './model.js';

/**
 * Chains in the jobs table: a row whose trigger filter hears another row's completion runs
 * after it. A chain that comes back to a row it started from would run forever, so every row on
 * such a cycle is refused at load (pure).
 */

export type Outcome = 'job_complete' | 'job_failed';
const OUTCOMES: readonly Outcome[] = ['job_complete', 'job_failed'];

export const EVERY_JOB = Symbol('every job');

export function completionTopic(prefix: string, outcome: Outcome, job: string): string {
  return `${prefix}/${outcome}/${job}`;
}

/**
 * Whose completions a trigger filter hears: every job's, one named job's, or none. A job name
 * is one topic level, so a filter that hears two different names has a wildcard there and
 * hears them all.
 */
export function heardCompletions(filter: string, prefix: string): typeof EVERY_JOB | string | undefined {
  const hears = (job: string) => OUTCOMES.some((o) => topicMatches(filter, completionTopic(prefix, o, job)));
  if (hears('a') && hears('b')) return EVERY_JOB;
  const level = filter.split('/')[prefix.split('/').length + 1];
  return level !== undefined && JOB_NAME.test(level) && hears(level) ? level : undefined;
}

/**
 * A reason for each row on a cycle: its completion (or failure) triggers, through other rows or
 * directly, itself again. Each names the shortest such cycle from that row.
 */
export function cycleReasons(rows: readonly JobRow[], prefix: string): Map<string, string> {
  const names = new Set(rows.map((r) => r.jobName));
  const heard = new Map<string, ReturnType<typeof heardCompletions>>(rows.map((r) => [r.jobName, heardCompletions(r.mqttTopic, prefix)]));
  const everyone = rows.map((r) => r.jobName);
  // The jobs whose completion triggers `job`: the one it names, or none; a row that hears every
  // job hears them through ANY_JOB, so the graph has a row's worth of edges, not a table's.
  const triggeredBy = (job: string): readonly string[] => {
    if (job === ANY_JOB) return everyone;
    const h = heard.get(job);
    if (h === EVERY_JOB) return [ANY_JOB];
    return h !== undefined && names.has(h) ? [h] : [];
  };
  const component = components([...everyone, ANY_JOB], triggeredBy);
  const size = new Map<number, number>();
  for (const c of component.values()) size.set(c, (size.get(c) ?? 0) + 1);
  const reasons = new Map<string, string>();
  for (const job of everyone) {
    // Off a cycle unless its component has others in it or it triggers itself: no search needed.
    if (size.get(component.get(job)!) === 1 && !triggeredBy(job).includes(job)) continue;
    const cycle = shortestCycle(job, triggeredBy);
    if (cycle) reasons.set(job, `cycle: ${cycle.filter((j) => j !== ANY_JOB).join(' → ')}`);
  }
  return reasons;
}

/** Not a job name (JOB_NAME has no "*"): the node between every job and the rows that hear them all. */
const ANY_JOB = '*';

/** Breadth-first back along the edges from `start`; the path found, read forwards, starts and ends at `start`. */
function shortestCycle(start: string, predecessors: (job: string) => readonly string[]): string[] | undefined {
  const towardStart = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const job = queue[i]!;
    const before = predecessors(job);
    if (before.includes(start)) {
      const path = [start];
      for (let j = job; j !== start; j = towardStart.get(j)!) path.push(j);
      return [...path, start];
    }
    for (const b of before) {
      if (towardStart.has(b)) continue;
      towardStart.set(b, job);
      queue.push(b);
    }
  }
  return undefined;
}

/** Strongly connected components (Tarjan's, without recursion so a long chain cannot overflow the stack): each job's component. */
function components(jobs: readonly string[], edges: (job: string) => readonly string[]): Map<string, number> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const component = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  let count = 0;
  for (const root of jobs) {
    if (index.has(root)) continue;
    const work: { job: string; next: readonly string[]; i: number }[] = [];
    const open = (job: string) => {
      index.set(job, index.size);
      low.set(job, index.get(job)!);
      stack.push(job);
      onStack.add(job);
      work.push({ job, next: edges(job), i: 0 });
    };
    open(root);
    while (work.length) {
      const top = work[work.length - 1]!;
      if (top.i < top.next.length) {
        const to = top.next[top.i++]!;
        if (!index.has(to)) open(to);
        else if (onStack.has(to)) low.set(top.job, Math.min(low.get(top.job)!, index.get(to)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.job, Math.min(low.get(parent.job)!, low.get(top.job)!));
      if (low.get(top.job) !== index.get(top.job)) continue;
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.set(member, count);
      } while (member !== top.job);
      count++;
    }
  }
  return component;
}
