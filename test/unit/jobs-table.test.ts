import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseTable, TableError } from '../../src/hub/engines/jobs/table.js';
import { EVERY_JOB, heardCompletions } from '../../src/hub/engines/jobs/table-cycles.js';
import { quantityValue } from '../../src/hub/engines/jobs/row-schema.js';

const prefix = 'services/mqtt_job_listener';
const csv = (text: string) => parseTable(text, 'csv', { prefix });
const yaml = (text: string) => parseTable(text, 'yaml', { prefix });
const HEADER = 'job_name,mqtt_topic,image,cpu_request,cpu_limit,memory_request,memory_limit,gpu,disk_request,disk_limit,parallelism';

describe('jobs table: the seed CSV as-is', () => {
  it('reads every row with its resources and line, the defaults filled in', () => {
    const { rows, errors } = csv(readFileSync(new URL('../fixtures/jobs/seed-jobs.csv', import.meta.url), 'utf8'));
    expect(errors).toEqual([]);
    expect(rows.map((r) => [r.line, r.jobName, r.mqttTopic])).toEqual([
      [2, 'spike-sort', 'experiments/upload/+'],
      [3, 'qc-report', `${prefix}/job_complete/spike-sort`],
      [4, 'batch-features', `${prefix}/job_complete/qc-report`],
    ]);
    expect(rows[0]).toEqual({
      line: 2,
      jobName: 'spike-sort',
      mqttTopic: 'experiments/upload/+',
      concurrency: 'allow',
      params: {},
      executor: 'kubernetes',
      image: 'braingeneers/spikesort:v2',
      resources: { cpuRequest: '2', cpuLimit: '4', memoryRequest: '16Gi', memoryLimit: '32Gi', gpu: 1, diskRequest: '100Gi', diskLimit: '200Gi' },
      parallelism: 1,
      completions: 1,
      backoffLimit: 0,
    });
    // gpu 0 is no GPU at all; parallelism 4 runs 4 pods that must all succeed, as the seed's Jobs did.
    expect(rows[2]).toMatchObject({ resources: { cpuRequest: '1' }, parallelism: 4, completions: 4 });
    expect('gpu' in (rows[2] as { resources: object }).resources).toBe(false);
  });

  it('honours BOM, CRLF, blank lines, spaces after commas and multi-line quoted fields in line numbers', () => {
    const text = [
      '\uFEFFjob_name, mqtt_topic, image, parallelism',
      '',
      'a, "topic/a", "img:1", 1',
      '  ',
      ',,,',
      'b, topic/b, "img with',
      'newline", 1',
      'c, topic/c, "img:""q""", 2',
      'd, "topic/d", img:1, x',
      '',
    ].join('\r\n');
    const { rows, errors } = csv(text);
    expect(rows.map((r) => [r.line, r.jobName])).toEqual([[3, 'a']]);
    expect(errors).toEqual([
      { line: 6, jobName: 'b', reason: 'image: expected an image reference (registry/name:tag or name@sha256:…)' },
      { line: 8, jobName: 'c', reason: 'image: expected an image reference (registry/name:tag or name@sha256:…)' },
      { line: 9, jobName: 'd', reason: 'parallelism: expected a whole number ≥ 1' },
    ]);
  });

  it('keeps good rows next to bad ones, each bad one with its line and every reason', () => {
    const text = [
      HEADER,
      'good,t/1,img,500m,1,512Mi,1G,0,,,1',
      'Bad_Name,t/2,img,,,,,,,,1',
      'noimage,t/3,,,,,,,,,1',
      'cpu,t/4,img,two,1,,,,,,0',
      'greedy,t/5,img,2,1,2Gi,1Gi,,,,1',
      'topic,t/#/x,img,,,,,1.5,,,1',
      'short,t/6,img',
      'good,t/7,img,,,,,,,,1',
      'also-good,t/+/8,img,,,,,,,,,',
    ].join('\n');
    const { rows, errors } = csv(text);
    expect(rows.map((r) => r.jobName)).toEqual(['good', 'also-good']);
    expect(errors).toEqual([
      { line: 3, jobName: 'Bad_Name', reason: 'job_name: use 1-52 lowercase letters, digits or "-", starting and ending with a letter or digit' },
      { line: 4, jobName: 'noimage', reason: 'set image (a Kubernetes Job) or action (an agent action)' },
      { line: 5, jobName: 'cpu', reason: 'cpu_request: expected a Kubernetes quantity such as 500m, 2, 512Mi or 1G; parallelism: expected a whole number ≥ 1' },
      { line: 6, jobName: 'greedy', reason: 'cpu_request: 2 is more than cpu_limit 1; memory_request: 2Gi is more than memory_limit 1Gi' },
      { line: 7, jobName: 'topic', reason: 'mqtt_topic: not an MQTT topic filter ("+" and "#" only as whole levels, "#" last); gpu: expected a whole number ≥ 0' },
      { line: 8, jobName: 'short', reason: 'has 3 fields, the header 11' },
      { line: 9, jobName: 'good', reason: 'duplicate job_name (first on line 2)' },
    ]);
  });

  it('reads the extra columns, lists and maps written as YAML flow or JSON', () => {
    const text = [
      'job_name,mqtt_topic,executor,action,selector,timeout_seconds,concurrency,params,image,command,args,completions,backoff_limit,active_deadline_seconds',
      `backup,ops/backup,,backup-db,"{site: lab, gpu: ""no""}",600,forbid,"{db: {pattern: '[a-z]+', default: main}}",,,,,,`,
      `train,ml/train,kubernetes,,,,replace,,trainer:3,"[""python"", -m, train]","[--epochs, 3]",5,2,3600`,
    ].join('\n');
    const { rows, errors } = csv(text);
    expect(errors).toEqual([]);
    expect(rows[0]).toEqual({ line: 2, jobName: 'backup', mqttTopic: 'ops/backup', concurrency: 'forbid', params: { db: { pattern: '[a-z]+', default: 'main', required: false } }, executor: 'agent', action: 'backup-db', selector: { site: 'lab', gpu: 'no' }, timeoutSeconds: 600 });
    expect(rows[1]).toMatchObject({ executor: 'kubernetes', command: ['python', '-m', 'train'], args: ['--epochs', '3'], parallelism: 1, completions: 5, backoffLimit: 2, activeDeadlineSeconds: 3600, concurrency: 'replace' });
  });

  it('refuses keys of the other executor, unknown columns that are set, and ambiguous rows', () => {
    const text = ['job_name,mqtt_topic,image,action,parallelism,timeout_seconds,cpu_reqest', 'k,t/1,img,,1,60,', 'a,t/2,,act,2,,', 'both,t/3,img,act,,,', 'typo,t/4,img,,,,1', 'fine,t/5,img,,,,'].join('\n');
    const { rows, errors } = csv(text);
    expect(rows.map((r) => r.jobName)).toEqual(['fine']);
    expect(errors.map((e) => [e.line, e.reason])).toEqual([
      [2, 'timeout_seconds: applies to agent rows only'],
      [3, 'parallelism: applies to kubernetes rows only'],
      [4, 'image and action are both set: set executor (kubernetes or agent)'],
      [5, 'unknown key "cpu_reqest"'],
    ]);
  });

  it('checks declared parameters: names, patterns that compile, defaults that match, env names that would clash', () => {
    const row = (params: string) => `- {job_name: p, mqtt_topic: t, image: img, params: ${params}}`;
    expect(yaml(row('{n: {pattern: "\\\\d+", required: true}}')).rows[0]!.params).toEqual({ n: { pattern: '\\d+', required: true } });
    expect(yaml(row('{1n: {pattern: x}}')).errors[0]!.reason).toBe('params.1n: parameter names are letters, digits and "_", not starting with a digit');
    expect(yaml(row('{n: {pattern: "("}}')).errors[0]!.reason).toMatch(/^params\.n\.pattern: not a valid regular expression/);
    expect(yaml(row('{n: {pattern: "[0-9]+", default: "12a"}}')).errors[0]!.reason).toBe('params.n.default: does not match its pattern');
    expect(yaml(row('{n: {pattern: "x", default: x, required: true}}')).errors[0]!.reason).toBe('params.n.required: a required parameter has no default');
    expect(yaml(row('{ab: {pattern: x}, AB: {pattern: x}}')).errors[0]!.reason).toBe('params.AB: clashes with "ab" (both are PUSHFLEET_JOB_PARAM_AB)');
    expect(yaml(row('{n: {pattern: x, shell: true}}')).errors[0]!.reason).toMatch(/^params\.n: Unrecognized key/);
  });

  it('refuses a table it cannot read as a whole, naming the line', () => {
    expect(() => csv(`${HEADER}\na,t,"img\nb,t,img`)).toThrow(TableError);
    expect(() => csv(`${HEADER}\na,t,"img\nb,t,img`)).toThrow('line 2: not valid CSV: this quoted field is never closed');
    expect(() => csv('name,topic\na,b')).toThrow('line 1: the header has no job_name column (it reads: name,topic)');
    expect(() => csv('job_name,mqtt_topic,job_name\na,b,c')).toThrow('line 1: column "job_name" appears twice in the header');
    expect(csv('')).toEqual({ rows: [], errors: [] });
  });
});

describe('jobs table: YAML', () => {
  it('reads a list of rows with each item’s line; bad items stand alone', () => {
    const text = `# jobs
- job_name: sort
  mqtt_topic: experiments/+/upload
  image: sorter:1
  cpu_request: 2
  memory_limit: 1G
  gpu: 2

- job_name: notify
  mqtt_topic: ${prefix}/job_failed/sort
  executor: agent
  action: page-oncall
  selector: {role: ops}
- just a string
- job_name: sort
  mqtt_topic: x
  image: y
- job_name: deadline
  mqtt_topic: z
  image: y
  active_deadline_seconds: 0
`;
    const { rows, errors } = yaml(text);
    expect(rows.map((r) => [r.line, r.jobName, r.executor])).toEqual([
      [2, 'sort', 'kubernetes'],
      [9, 'notify', 'agent'],
    ]);
    expect(rows[0]).toMatchObject({ resources: { cpuRequest: '2', memoryLimit: '1G', gpu: 2 } });
    expect(rows[1]).toMatchObject({ selector: { role: 'ops' }, timeoutSeconds: 3600 });
    expect(errors).toEqual([
      { line: 14, reason: 'a row is a map of keys (job_name, mqtt_topic, …) to values' },
      { line: 15, jobName: 'sort', reason: 'duplicate job_name (first on line 2)' },
      { line: 18, jobName: 'deadline', reason: 'active_deadline_seconds: expected a whole number ≥ 1' },
    ]);
  });

  it('refuses YAML that is not a list or does not parse', () => {
    expect(() => yaml('job_name: a\nmqtt_topic: b\n')).toThrow('line 1: a YAML jobs table is a list of rows');
    expect(() => yaml('- job_name: a\n  job_name: b\n')).toThrow(/^line 2: not valid YAML: Map keys must be unique/);
    expect(() => yaml('- [a\n')).toThrow(TableError);
  });

  it('lets the caller refuse a row with its own check before cycles are looked for', () => {
    const text = `- {job_name: a, mqtt_topic: "pushfleet/heads/#", image: i}\n- {job_name: b, mqtt_topic: t, image: i}\n`;
    const { rows, errors } = parseTable(text, 'yaml', { prefix, refuse: (row) => (row.mqttTopic.startsWith('pushfleet/') ? 'overlaps pushfleet topics' : undefined) });
    expect(rows.map((r) => r.jobName)).toEqual(['b']);
    expect(errors).toEqual([{ line: 1, jobName: 'a', reason: 'overlaps pushfleet topics' }]);
  });
});

describe('jobs table: cycles', () => {
  const table = (rows: [string, string][]) => yaml(rows.map(([name, topic]) => `- {job_name: ${name}, mqtt_topic: "${topic}", image: i}`).join('\n'));

  it('refuses every row on a cycle, naming the cycle from that row; chains without one stay', () => {
    const { rows, errors } = table([
      ['start', 'lab/upload'],
      ['a', `${prefix}/job_complete/start`],
      ['b', `${prefix}/job_complete/a`],
      ['c', `${prefix}/job_failed/b`],
      ['d', `${prefix}/job_complete/c`],
      ['e', `${prefix}/+/d`],
      ['x', `${prefix}/job_complete/z`],
      ['y', `${prefix}/job_failed/x`],
      ['z', `${prefix}/job_complete/y`],
    ]);
    expect(rows.map((r) => r.jobName)).toEqual(['start', 'a', 'b', 'c', 'd', 'e']);
    expect(errors).toEqual([
      { line: 7, jobName: 'x', reason: 'cycle: x → y → z → x' },
      { line: 8, jobName: 'y', reason: 'cycle: y → z → x → y' },
      { line: 9, jobName: 'z', reason: 'cycle: z → x → y → z' },
    ]);
  });

  it('sees self-triggers, wildcards that hear every job, and a prefix of its own', () => {
    const { rows, errors } = table([
      ['self', `${prefix}/job_failed/self`],
      ['every', `${prefix}/job_complete/+`],
      ['all', '#'],
      ['plain', 'lab/+/done'],
    ]);
    expect(rows.map((r) => r.jobName)).toEqual(['plain']);
    expect(errors.map((e) => e.reason)).toEqual(['cycle: self → self', 'cycle: every → every', 'cycle: all → all']);
    // The rows feeding a job that hears every completion are on a cycle through it.
    const fed = table([
      ['hub', `+/+/job_complete/#`],
      ['leaf', `${prefix}/job_complete/hub`],
      ['other', 'a/b'],
    ]);
    expect(fed.errors.map((e) => e.reason)).toEqual(['cycle: hub → hub', 'cycle: leaf → hub → leaf']);
    expect(fed.rows.map((r) => r.jobName)).toEqual(['other']);
    expect(parseTable(`- {job_name: s, mqtt_topic: "${prefix}/job_complete/s", image: i}`, 'yaml', { prefix: 'jobs' }).rows).toHaveLength(1);
  });

  it('tells whose completions a filter hears', () => {
    expect(heardCompletions(`${prefix}/job_complete/a/#`, prefix)).toBe('a');
    expect(heardCompletions(`+/mqtt_job_listener/+/every`, prefix)).toBe('every');
    expect(heardCompletions(`${prefix}/#`, prefix)).toBe(EVERY_JOB);
    expect(heardCompletions(`${prefix}/job_complete`, prefix)).toBeUndefined();
    expect(heardCompletions(`${prefix}/refresh`, prefix)).toBeUndefined();
  });

  it('judges a table of 2000 rows, half of them hearing every job', () => {
    const rows = Array.from({ length: 2000 }, (_, i) => `- {job_name: j${i}, mqtt_topic: "${i % 2 ? `${prefix}/job_complete/j${i - 1}` : `${prefix}/+/+`}", image: i}`);
    const { rows: ok, errors } = yaml(rows.join('\n'));
    expect(ok).toHaveLength(0);
    expect(errors[1]!.reason).toBe('cycle: j1 → j0 → j1');
  });
});

describe('Kubernetes quantities', () => {
  it.each([
    ['500m', 0.5],
    ['2', 2],
    ['0.5', 0.5],
    ['512Mi', 512 * 2 ** 20],
    ['1G', 1e9],
    ['1e3', 1000],
  ])('%s = %d', (q, v) => expect(quantityValue(q)).toBeCloseTo(v));
});
