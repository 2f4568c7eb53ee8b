import { execFileSync } from 'node:child_process';

export type Sample = { name: string; labels: Record<string, string>; value: number };
export type Family = { name: string; type: string; help: string; samples: Sample[] };

/**
 * Reads a Prometheus text exposition with the reference parser, the official Python client's
 * (Debian python3-prometheus-client; .ci/install-deps installs it): it refuses what Prometheus
 * would, and keeps every labelled series of a histogram apart (the npm parsers fold them).
 */
const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
def num(v):
    return None if math.isnan(v) else ('+Inf' if v == math.inf else ('-Inf' if v == -math.inf else v))
out = [{'name': f.name, 'type': f.type, 'help': f.documentation,
        'samples': [{'name': s.name, 'labels': s.labels, 'value': num(s.value)} for s in f.samples]}
       for f in text_string_to_metric_families(sys.stdin.read())]
json.dump(out, sys.stdout)
`;

/** Debian's own: its package installs the client for that interpreter only (a pyenv python3 on PATH would not have it). */
const DEBIAN_PYTHON = '/usr/bin/python3';

export function parsePrometheusText(text: string): Family[] {
  return JSON.parse(execFileSync(DEBIAN_PYTHON, ['-c', PARSE], { input: text, encoding: 'utf8' })) as Family[];
}

/** The family named `name` (a counter's without its _total), or a failed test naming what there is. */
export function family(families: Family[], name: string): Family {
  const found = families.find((f) => f.name === name);
  if (!found) throw new Error(`no metric family ${name}; there are: ${families.map((f) => f.name).join(', ')}`);
  return found;
}

/** The value of the one sample named `sample` whose labels include `labels`. */
export function sampleValue(families: Family[], familyName: string, sample: string, labels: Record<string, string> = {}): number {
  const matching = family(families, familyName).samples.filter((s) => s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length !== 1) throw new Error(`${matching.length} samples ${sample}${JSON.stringify(labels)}; the family has: ${JSON.stringify(family(families, familyName).samples)}`);
  return matching[0]!.value;
}
