import { readFile } from 'node:fs/promises';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'vitest';
import YAML from 'yaml';

export const SPEC_FILE = new URL('../../src/hub/api/openapi.yaml', import.meta.url);
const SPEC_ID = 'openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

type Operation = { responses: Record<string, ResponseObject | { $ref: string }> };
type ResponseObject = { content?: Record<string, { schema?: unknown }> };
export type Spec = { paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>; ajv: InstanceType<typeof Ajv2020.default> };

/** The repo's OpenAPI file, with a validator that knows all of it (so its `$ref`s resolve). */
export async function loadSpec(): Promise<Spec> {
  const doc = YAML.parse(await readFile(SPEC_FILE, 'utf8')) as { openapi: string; paths: Spec['paths'] };
  expect(doc.openapi).toMatch(/^3\.1\./);
  // strict off: the document is OpenAPI, not only JSON Schema (paths, descriptions, examples).
  const ajv = new Ajv2020.default({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema(doc, SPEC_ID);
  return { paths: doc.paths, ajv };
}

/** Every operation of the spec as `METHOD /path/{param}`, sorted. */
export function specOperations(spec: Spec): string[] {
  return Object.entries(spec.paths)
    .flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();
}

const pointer = (...parts: string[]): string => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/**
 * Fails the test unless the spec documents `status` for this operation and the body matches its
 * JSON schema (`pathTemplate` as the spec writes it, e.g. `/services/{name}`, without /api/v1).
 */
export function expectSpecResponse(spec: Spec, method: string, pathTemplate: string, res: { status: number; body: unknown; headers: Record<string, string | string[] | undefined> }): void {
  const m = method.toLowerCase() as (typeof METHODS)[number];
  const operation = spec.paths[pathTemplate]?.[m];
  expect(operation, `${method} ${pathTemplate} is not in openapi.yaml`).toBeDefined();
  const response = operation!.responses[String(res.status)];
  expect(response, `${method} ${pathTemplate} answered ${res.status}, which openapi.yaml does not document (${JSON.stringify(res.body).slice(0, 300)})`).toBeDefined();
  // A shared response ($ref to components/responses) is validated where it is defined.
  const at = '$ref' in response! ? response.$ref.slice(1) : `/${pointer('paths', pathTemplate, m, 'responses', String(res.status))}`;
  const object = ('$ref' in response! ? resolve(spec, response.$ref) : response) as ResponseObject;
  const media = Object.keys(object.content ?? {})[0];
  if (media === undefined) return;
  expect(String(res.headers['content-type'] ?? '')).toContain(media);
  const validate = spec.ajv.getSchema(`${SPEC_ID}#${at}/${pointer('content', media, 'schema')}`);
  expect(validate, `no schema at ${at}`).toBeDefined();
  const ok = validate!(res.body);
  expect(ok, `${method} ${pathTemplate} ${res.status} does not match openapi.yaml: ${spec.ajv.errorsText(validate!.errors)}; body ${JSON.stringify(res.body).slice(0, 500)}`).toBe(true);
}

function resolve(spec: Spec, ref: string): unknown {
  const root = spec.ajv.getSchema(SPEC_ID)!.schema as Record<string, unknown>;
  return ref
    .slice(2)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], root);
}

/** The spec's path template that `url` (with or without /api/v1 and a query) is an instance of, if any. */
export function specTemplateOf(spec: Spec, url: string): string | undefined {
  const path = url.split('?', 1)[0]!.replace(/^\/api\/v1(?=\/)/, '');
  const levels = path.split('/');
  return Object.keys(spec.paths).find((template) => {
    const parts = template.split('/');
    return parts.length === levels.length && parts.every((p, i) => (/^\{.+\}$/.test(p) ? levels[i] !== '' : p === levels[i]));
  });
}

/**
 * expectSpecResponse for a request by its URL: a route the spec does not have must have answered
 * the API's 404 (or, before the token check, 401), in the Error shape.
 */
export function expectSpecAnswer(spec: Spec, method: string, url: string, res: Parameters<typeof expectSpecResponse>[3]): void {
  const template = specTemplateOf(spec, url);
  if (template !== undefined && spec.paths[template]?.[method.toLowerCase() as (typeof METHODS)[number]]) return expectSpecResponse(spec, method, template, res);
  expect([401, 404], `${method} ${url} is not in openapi.yaml but answered ${res.status}`).toContain(res.status);
  expect(spec.ajv.getSchema(`${SPEC_ID}#/components/schemas/Error`)!(res.body), `${method} ${url}: not an Error body`).toBe(true);
}
