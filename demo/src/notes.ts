/**
 * A card's notes: a plain <textarea> bound to a Y.Text whose updates are an event stream
 * (bindYDoc), so that two devices typing in the same notes merge instead of overwriting.
 *
 * Invariants:
 * 1. A local edit becomes the smallest Yjs delete + insert (common prefix and suffix kept), so
 *    concurrent edits elsewhere in the text survive the merge.
 * 2. A remote change rewrites the textarea only from Yjs transactions that are not ours, and
 *    keeps the caret where it was relative to the text around it.
 */
import type * as Y from 'yjs';
import type { EventStore } from '../../src/index.ts';
import { bindYDoc, type YDocBinding } from '../../src/yjs/index.ts';
import { notesStream } from './board.ts';

const LOCAL = Symbol('textarea');

export interface NotesEditor {
  readonly binding: YDocBinding;
  close(): void;
}

export function bindNotes(
  store: EventStore<unknown>,
  card: string,
  textarea: HTMLTextAreaElement,
): NotesEditor {
  const binding = bindYDoc(store, notesStream(card), {
    onError: (error) => console.error('notes', error),
  });
  const text: Y.Text = binding.doc.getText('notes');
  textarea.disabled = true;
  void binding.ready.then(() => {
    textarea.value = text.toString();
    textarea.disabled = false;
  });

  const onInput = () => {
    const before = text.toString();
    const after = textarea.value;
    let start = 0;
    while (start < before.length && start < after.length && before[start] === after[start]) {
      start += 1;
    }
    let endBefore = before.length;
    let endAfter = after.length;
    while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
      endBefore -= 1;
      endAfter -= 1;
    }
    binding.doc.transact(() => {
      if (endBefore > start) text.delete(start, endBefore - start);
      if (endAfter > start) text.insert(start, after.slice(start, endAfter));
    }, LOCAL);
  };
  textarea.addEventListener('input', onInput);

  const onChange = (event: Y.YTextEvent, transaction: Y.Transaction) => {
    if (transaction.origin === LOCAL) return;
    // Shift the caret by what was inserted or deleted before it (invariant 2).
    let caret = textarea.selectionStart;
    let index = 0;
    for (const op of event.delta) {
      if (op.retain !== undefined) index += op.retain;
      else if (typeof op.insert === 'string') {
        if (index <= caret) caret += op.insert.length;
        index += op.insert.length;
      } else if (op.delete !== undefined) {
        if (index < caret) caret -= Math.min(op.delete, caret - index);
      }
    }
    textarea.value = text.toString();
    if (document.activeElement === textarea) textarea.setSelectionRange(caret, caret);
  };
  text.observe(onChange);

  return {
    binding,
    close() {
      textarea.removeEventListener('input', onInput);
      text.unobserve(onChange);
      binding.destroy();
    },
  };
}
