// markdown.js — the chat's answers as formatted text: fenced code blocks,
// inline code, headings, lists, quotes, bold and italics, paragraphs. The
// result is DOM built with text nodes only (rl.el), so HTML in an answer is
// shown as the characters it is, never run; links stay plain text.
'use strict';

rl.markdown = (() => {
  // `code`, **bold**, *italic*: text nodes and elements into parent.
  function inline(parent, text) {
    const re = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|\*([^*\s\n](?:[^*\n]*[^*\s\n])?)\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) parent.append(text.slice(last, m.index));
      if (m[1] !== undefined) parent.append(rl.el('code', {text: m[1]}));
      else if (m[2] !== undefined) parent.append(rl.el('strong', {text: m[2]}));
      else parent.append(rl.el('em', {text: m[3]}));
      last = re.lastIndex;
    }
    if (last < text.length) parent.append(text.slice(last));
    return parent;
  }

  const FENCE = /^\s*```\s*([\w+-]*)\s*$/;
  const HEADING = /^(#{1,6})\s+(.*)$/;
  const ITEM = /^\s*([-*+]|\d+[.)])\s+(.*)$/;
  const QUOTE = /^\s*>\s?(.*)$/;

  // A fenced block from lines[i] (the fence); returns the next line's index.
  function code(out, lines, i) {
    const lang = lines[i].match(FENCE)[1];
    const body = [];
    i++;
    while (i < lines.length && !FENCE.test(lines[i])) body.push(lines[i++]);
    const pre = rl.el('pre', lang ? {'data-lang': lang} : {}, rl.el('code', {text: body.join('\n')}));
    out.append(pre);
    return i + 1;
  }

  function list(out, lines, i) {
    const ordered = /\d/.test(lines[i].match(ITEM)[1]);
    const l = rl.el(ordered ? 'ol' : 'ul');
    while (i < lines.length && ITEM.test(lines[i])) l.append(inline(rl.el('li'), lines[i++].match(ITEM)[2]));
    out.append(l);
    return i;
  }

  function quote(out, lines, i) {
    const body = [];
    while (i < lines.length && QUOTE.test(lines[i])) body.push(lines[i++].match(QUOTE)[1]);
    out.append(inline(rl.el('blockquote'), body.join('\n')));
    return i;
  }

  function paragraph(out, lines, i) {
    const body = [];
    while (i < lines.length && lines[i].trim() !== '' && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) &&
           !ITEM.test(lines[i]) && !QUOTE.test(lines[i]))
      body.push(lines[i++]);
    out.append(inline(rl.el('p'), body.join('\n')));
    return i;
  }

  return function render(text) {
    const out = document.createDocumentFragment();
    const lines = String(text).split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let h;
      if (line.trim() === '') i++;
      else if (FENCE.test(line)) i = code(out, lines, i);
      else if ((h = line.match(HEADING))) {
        out.append(inline(rl.el('h' + Math.min(6, h[1].length + 2)), h[2]));
        i++;
      } else if (ITEM.test(line)) i = list(out, lines, i);
      else if (QUOTE.test(line)) i = quote(out, lines, i);
      else i = paragraph(out, lines, i);
    }
    return out;
  };
})();
