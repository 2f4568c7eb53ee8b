import { describe, expect, it } from 'vitest';
import { refusePublish, refuseSubscribe } from '../../src/shared/contract/access.js';
import { TopicContract } from '../../src/shared/contract/topic-table.js';

describe('the jobs topics in the contract', () => {
  it('lets only the hub publish completions, everyone read them; operators refresh and ask', () => {
    const c = new TopicContract({ jobsPrefix: 'lab/jobs' });
    const client = { name: 'c', role: 'client' as const };
    const op = { name: 'o', role: 'operator' as const };
    expect(refusePublish(c, client, 'lab/jobs/job_complete/a')).toMatch(/may not publish jobs.complete/);
    expect(refusePublish(c, op, 'lab/jobs/job_failed/a')).toMatch(/may not publish jobs.failed/);
    expect(refuseSubscribe(c, client, 'lab/jobs/job_failed/+')).toBeNull();
    expect(refusePublish(c, op, 'lab/jobs/refresh')).toBeNull();
    expect(refusePublish(c, client, 'lab/jobs/refresh')).toMatch(/jobs.refresh/);
    expect(refusePublish(c, client, 'pushfleet/jobs/request')).toMatch(/jobs.request/);
  });

  it('trigger filters are publishable by the trigger roles only, and may not reach pushfleet topics but completions', () => {
    const c = new TopicContract();
    c.setJobTriggers(['sensors/+/done'], ['client']);
    expect(refusePublish(c, { name: 'c', role: 'client' }, 'sensors/x/done')).toBeNull();
    expect(refusePublish(c, { name: 'a', role: 'agent' }, 'sensors/x/done')).toMatch(/job trigger.*engines.jobs.triggerRoles/);
    expect(refusePublish(c, { name: 'c', role: 'client' }, 'sensors/x/other')).toMatch(/outside pushfleet's topics/);
    expect(c.ownTopicsUnder('services/mqtt_job_listener/job_complete/a')).toEqual([]);
    expect(c.ownTopicsUnder('services/mqtt_job_listener/+')).toEqual(['jobs.refresh', 'jobs.error']);
    expect(c.ownTopicsUnder('#')).toContain('push');
    expect(c.ownTopicsUnder('sensors/#')).toEqual([]);
  });
});
