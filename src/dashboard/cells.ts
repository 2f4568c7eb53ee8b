import { h } from './dom.js';
import { ago, isoOf } from './format.js';

/** Table cells the sections share: a relative time, a state badge, a code span. */
export const when = (at: string | null | undefined): HTMLElement => h('time', { attrs: { datetime: isoOf(at), title: isoOf(at) } }, ago(at));

/** A state as a badge; its class (state-<name>) colours it, the word says it. */
export const state = (value: string): HTMLElement => h('span', { class: `state state-${value.replace(/[^a-z-]/gi, '')}` }, value);

export const code = (text: string, title?: string): HTMLElement => h('code', { attrs: { title } }, text);
