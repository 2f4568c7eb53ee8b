/**
 * Building the page from data without HTML: every string becomes a text node, every attribute is
 * set by name. Nothing here parses markup, so a label or an error message from the fleet is shown
 * as written.
 */
/** What goes in an element: nodes, text, nothing (null, undefined, false), or a list of these. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

export type Props = {
  class?: string;
  /** Attributes, set with setAttribute (never event handlers: use `on`). */
  attrs?: Record<string, string | undefined>;
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
};

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  for (const [name, value] of Object.entries(props.attrs ?? {})) if (value !== undefined) node.setAttribute(name, value);
  for (const [type, listener] of Object.entries(props.on ?? {})) node.addEventListener(type, listener as EventListener);
  append(node, children);
  return node;
}

export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** The element with this id, which the page's HTML must have. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node as T;
}

export type Column<T> = { title: string; cell(row: T): Child; class?: string };

/** A table of `rows`, in a box that scrolls sideways on a narrow screen rather than squeezing the columns. */
export function table<T>(caption: string, columns: Column<T>[], rows: readonly T[]): HTMLElement {
  const head = h('tr', {}, ...columns.map((c) => h('th', { attrs: { scope: 'col' } }, c.title)));
  const body = rows.map((row) => {
    const tr = h('tr');
    for (const c of columns) {
      tr.appendChild(h('td', { class: c.class }, c.cell(row)));
    }
    return tr;
  });
  return h('div', { class: 'scroll', attrs: { role: 'region', 'aria-label': caption, tabindex: '0' } }, h('table', {}, h('caption', { class: 'sr-only' }, caption), h('thead', {}, head), h('tbody', {}, ...body)));
}

/** A line saying there is nothing to show (or why not). */
export const note = (text: string, cls = 'muted'): HTMLElement => h('p', { class: cls }, text);
