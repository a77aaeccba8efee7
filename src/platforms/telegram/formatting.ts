import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { Api, helpers } from 'telegram';
import { AppError } from '../../errors.ts';

// API.md's parseMode for user accounts. The Bot API parses markup on Telegram's side (parse_mode
// HTML / MarkdownV2); MTProto has no parse mode, so an account sends (plain text, entities) and
// must read the caller's markup exactly as the Bot API would, or the same message looks different
// from a bot and from an account. Both parsers follow Telegram's own (tdlib's parse_html and
// parse_markdown_v2, MessageEntity.cpp; core.telegram.org/bots/api#formatting-options): the same
// tags and characters, the same errors ("can't parse entities: …" with UTF-8 byte offsets), and
// offsets in UTF-16 code units, which JS string indices already are.
// GramJS's own parsers are not used: its HTMLParser knows no <tg-spoiler>, <ins>, <strike> or
// <span class="tg-spoiler"> and accepts any malformed input; its MarkdownV2Parser is a regex without
// escapes.

export type EntityType =
  | 'bold' | 'italic' | 'underline' | 'strikethrough' | 'spoiler' | 'code' | 'pre' | 'text_link'
  | 'text_mention' | 'custom_emoji' | 'blockquote' | 'expandable_blockquote';

/** One entity as the Bot API names it (MessageEntity.type); offset and length in UTF-16 code units. */
export interface TextEntity {
  type: EntityType;
  offset: number;
  length: number;
  url?: string;
  language?: string;
  userId?: string;
  customEmojiId?: string;
}

export interface FormattedText { text: string; entities: TextEntity[] }

export type ParseMode = 'html' | 'markdown';

/** The caller's text as Telegram would show it: plain when no parse mode, else parsed. Throws VALIDATION_ERROR. */
export function formatText(text: string, parseMode?: ParseMode): FormattedText {
  if (parseMode === 'html') return parseHtml(text);
  if (parseMode === 'markdown') return parseMarkdownV2(text);
  return { text, entities: [] };
}

const cannotParse = (reason: string) => new AppError('VALIDATION_ERROR', `can't parse entities: ${reason}`);

// Telegram's errors name UTF-8 byte offsets into the caller's text.
const byteOffset = (src: string, i: number) => Buffer.byteLength(src.slice(0, i));

// tdlib's is_space: its strings end with '\0', which counts as a space; ours end with undefined.
const isSpace = (c: string | undefined) => c === undefined || c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\v' || c === '\f' || c === '\0';

// tdlib's sort_entities: by offset, the longer (outer) first, then by type priority.
const priority: Record<EntityType, number> = {
  blockquote: 0, expandable_blockquote: 0, pre: 11, code: 20, text_link: 49, text_mention: 49,
  bold: 90, italic: 91, underline: 92, strikethrough: 93, spoiler: 94, custom_emoji: 99,
};
const sortEntities = (entities: TextEntity[]) =>
  entities.sort((a, b) => a.offset - b.offset || b.length - a.length || priority[a.type] - priority[b.type]);

// tg://user?id=123 (or tg:user?id=123): a mention of a user by id, as tdlib's get_link_user_id reads it.
function linkUserId(url: string): string | undefined {
  const m = /^tg:(?:\/\/)?user\?(.*)$/i.exec(url.trim());
  if (!m) return undefined;
  const id = new URLSearchParams(m[1]).get('id');
  return id && /^[1-9]\d{0,18}$/.test(id) ? id : undefined;
}

/**
 * tdlib's get_checked_link, simplified: http(s) links (a bare host gets http://) with a dotted host,
 * and Telegram's own tg:, ton:, tonsite: links. Anything else is undefined, and Telegram then drops
 * the entity, keeping its text.
 */
export function checkedLink(raw: string): string | undefined {
  const url = raw.trim();
  if (!url) return undefined;
  if (/^(?:tg|ton|tonsite):/i.test(url)) return url;
  let parsed: URL;
  try {
    parsed = new URL(/^[a-z][a-z\d+.-]*:\/\//i.test(url) ? url : `http://${url}`);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  if (!parsed.hostname.includes('.') && !parsed.hostname.startsWith('[')) return undefined;
  return parsed.href;
}

// A link entity, or nothing when the URL is invalid (Telegram keeps the text, drops the link).
function linkEntity(offset: number, length: number, url: string): TextEntity | undefined {
  const userId = linkUserId(url);
  if (userId) return { type: 'text_mention', offset, length, userId };
  const checked = checkedLink(url);
  return checked === undefined ? undefined : { type: 'text_link', offset, length, url: checked };
}

// ---- MarkdownV2 (core.telegram.org/bots/api#markdownv2-style) ----

// tdlib's names in "Can't find end of <Type> entity" (MessageEntity::Type's operator<<).
type MdType = 'Bold' | 'Italic' | 'Underline' | 'Strikethrough' | 'Spoiler' | 'Code' | 'Pre' | 'PreCode' | 'TextUrl' | 'CustomEmoji' | 'BlockQuote';
const mdEntityType: Partial<Record<MdType, EntityType>> = {
  Bold: 'bold', Italic: 'italic', Underline: 'underline', Strikethrough: 'strikethrough', Spoiler: 'spoiler', Code: 'code',
};

// An entity begun and not yet ended: its start in the output (UTF-16) and in the source (index).
interface Open { type: MdType; language?: string; offset: number; at: number }

const RESERVED = '_*[]()~`>#+-=|{}.!\n';
const reservedError = (c: string) => cannotParse(`Character '${c}' is reserved and must be escaped with the preceding '\\'`);

/**
 * Telegram's MarkdownV2: *bold*, _italic_, __underline__, ~strikethrough~, ||spoiler||, `code`,
 * ```language\npre```, [text](url), ![👍](tg://emoji?id=…), >blockquote lines (**>…|| expandable).
 * Every other use of _*[]()~`>#+-=|{}.! must be escaped with '\'; inside code and pre only ` and \.
 * A port of tdlib's parse_markdown_v2, index for index, so that its corner cases (an empty entity
 * dropped, one newline after ``` skipped, ___ read as underline then italic) come out the same.
 */
export function parseMarkdownV2(src: string): FormattedText {
  let out = '';
  const entities: TextEntity[] = [];
  const open: Open[] = [];
  let haveBlockquote = false;
  let canStartBlockquote = true;
  const at = (i: number) => src[i];
  const endError = (o: Open) => cannotParse(`Can't find end of ${o.type} entity at byte offset ${byteOffset(src, o.at)}`);
  // A URL in (…) after ] with \-escapes; i is at ']'. Returns the URL and the index of ')'.
  const readUrl = (i: number): { url: string; end: number } => {
    let url = '';
    let j = i + 2;
    const begin = j;
    while (j < src.length && src[j] !== ')') {
      if (src[j] === '\\' && isEscapable(src.charCodeAt(j + 1))) {
        url += src[j + 1];
        j += 2;
        continue;
      }
      url += src[j++];
    }
    if (src[j] !== ')') throw cannotParse(`Can't find end of a URL at byte offset ${byteOffset(src, begin)}`);
    return { url, end: j };
  };

  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\' && isEscapable(src.charCodeAt(i + 1))) {
      i++;
      out += src[i];
      if (src[i] !== '\r') canStartBlockquote = src[i] === '\n';
      continue;
    }
    const top = open[open.length - 1];
    const inCode = top?.type === 'Code' || top?.type === 'Pre' || top?.type === 'PreCode';
    if (!(inCode ? c === '`' : RESERVED.includes(c))) {
      if (c !== '\r') canStartBlockquote = false;
      out += c;
      continue;
    }

    const isEnd = top !== undefined && (haveBlockquote && c === '\n' && at(i + 1) !== '>' ? true : endsEntity(top.type, c, at(i + 1), at(i + 2)));
    if (!isEnd) {
      const startAt = i;
      let type: MdType;
      let language: string | undefined;
      switch (c) {
        case '_':
          if (at(i + 1) === '_') {
            type = 'Underline';
            i++;
          } else type = 'Italic';
          break;
        case '*': type = 'Bold'; break;
        case '~': type = 'Strikethrough'; break;
        case '|':
          if (at(i + 1) !== '|') throw reservedError(c);
          type = 'Spoiler';
          i++;
          break;
        case '[': type = 'TextUrl'; break;
        case '`':
          if (at(i + 1) === '`' && at(i + 2) === '`') {
            i += 3;
            type = 'Pre';
            let langEnd = i;
            while (!isSpace(at(langEnd)) && at(langEnd) !== '`') langEnd++;
            if (i !== langEnd && langEnd < src.length && at(langEnd) !== '`') {
              type = 'PreCode';
              language = src.slice(i, langEnd);
              i = langEnd;
            }
            // One line break right after the opening ``` (and language) is not part of the block.
            if (at(i) === '\n' || at(i) === '\r') {
              i += (at(i + 1) === '\n' || at(i + 1) === '\r') && at(i) !== at(i + 1) ? 2 : 1;
            }
            i--;
          } else type = 'Code';
          break;
        case '!':
          if (at(i + 1) !== '[') throw reservedError(c);
          type = 'CustomEmoji';
          i++;
          break;
        case '\n':
          out += '\n';
          canStartBlockquote = true;
          continue;
        case '>':
          if (!canStartBlockquote) throw reservedError(c);
          if (haveBlockquote) continue; // the '>' that continues a quote on its next line
          type = 'BlockQuote';
          haveBlockquote = true;
          break;
        default:
          throw reservedError(c);
      }
      open.push({ type, ...(language !== undefined ? { language } : {}), offset: out.length, at: startAt });
      continue;
    }

    // The end of the innermost entity.
    let entity = open[open.length - 1]!;
    let type: MdType | 'ExpandableBlockQuote' = entity.type;
    if (c === '\n' && type !== 'BlockQuote') {
      // Inside a quote a line break ends it; only "||" right before it (an expandable quote's mark) may be open.
      const markAt = i - 2;
      const crMark = i - 3;
      if (type !== 'Spoiler' || !(entity.at === markAt || (entity.at === crMark && out.endsWith('\r')))) throw endError(entity);
      open.pop();
      entity = open[open.length - 1]!;
      if (entity.type !== 'BlockQuote') throw endError(entity);
      type = 'ExpandableBlockQuote';
    }
    let skip = out.length === entity.offset;
    // What the entity carries beyond its range; `type` where the opening mark alone does not tell it.
    let extra: Partial<TextEntity> = {};
    switch (type) {
      case 'Underline':
      case 'Spoiler':
        i++;
        break;
      case 'Pre':
      case 'PreCode':
        i += 2;
        extra = { type: 'pre', ...(entity.language ? { language: entity.language } : {}) };
        break;
      case 'TextUrl': {
        let url: string;
        if (at(i + 1) !== '(') {
          url = out.slice(entity.offset); // [example.com] links to its own text
        } else {
          const read = readUrl(i);
          url = read.url;
          i = read.end;
        }
        const link = linkEntity(entity.offset, out.length - entity.offset, url);
        if (link) extra = link;
        else skip = true;
        break;
      }
      case 'CustomEmoji': {
        if (at(i + 1) !== '(') throw cannotParse('The entity must contain a tg://emoji or tg://time URL');
        const read = readUrl(i);
        i = read.end;
        const id = /^tg:(?:\/\/)?emoji\?id=(\d{1,19})$/i.exec(read.url.trim())?.[1];
        if (!id || BigInt(id) === 0n || BigInt(id) > 0x7fffffffffffffffn) throw cannotParse('Invalid tg://emoji or tg://time URL specified');
        extra = { type: 'custom_emoji', customEmojiId: id };
        break;
      }
      case 'BlockQuote':
      case 'ExpandableBlockQuote':
        // The line break that ends a quote belongs to it.
        haveBlockquote = false;
        out += src[i];
        canStartBlockquote = true;
        skip = false;
        extra = { type: type === 'BlockQuote' ? 'blockquote' : 'expandable_blockquote' };
        break;
      default:
        break;
    }
    if (!skip) {
      entities.push({ type: mdEntityType[entity.type]!, ...extra, offset: entity.offset, length: out.length - entity.offset } as TextEntity);
    }
    open.pop();
  }

  if (haveBlockquote) {
    let type: EntityType = 'blockquote';
    // "||" as the text's last two characters: the quote is expandable.
    if (open[open.length - 1]?.type === 'Spoiler' && open[open.length - 1]!.at === src.length - 2) {
      open.pop();
      type = 'expandable_blockquote';
    }
    const quote = open[open.length - 1];
    if (quote?.type === 'BlockQuote') {
      if (out.length > quote.offset) entities.push({ type, offset: quote.offset, length: out.length - quote.offset });
      open.pop();
    }
  }
  if (open.length > 0) throw endError(open[open.length - 1]!);
  return { text: out, entities: sortEntities(entities) };
}

// Any ASCII character but NUL may follow '\' (tdlib: 0 < c <= 126).
const isEscapable = (code: number) => code > 0 && code <= 126;

function endsEntity(type: MdType, c: string, next: string | undefined, next2: string | undefined): boolean {
  switch (type) {
    case 'Bold': return c === '*';
    case 'Italic': return c === '_' && next !== '_';
    case 'Code': return c === '`';
    case 'Pre':
    case 'PreCode': return c === '`' && next === '`' && next2 === '`';
    case 'TextUrl':
    case 'CustomEmoji': return c === ']';
    case 'Underline': return c === '_' && next === '_';
    case 'Strikethrough': return c === '~';
    case 'Spoiler': return c === '|' && next === '|';
    case 'BlockQuote': return false;
  }
}

// ---- HTML (core.telegram.org/bots/api#html-style) ----

const HTML_TAGS = new Set(['a', 'b', 'strong', 'i', 'em', 's', 'strike', 'del', 'u', 'ins', 'tg-spoiler', 'tg-emoji', 'span', 'pre', 'code', 'blockquote']);
const HTML_TYPES: Record<string, EntityType> = {
  b: 'bold', strong: 'bold', i: 'italic', em: 'italic', s: 'strikethrough', strike: 'strikethrough', del: 'strikethrough',
  u: 'underline', ins: 'underline', 'tg-spoiler': 'spoiler', span: 'spoiler',
};
const isAlnum = (c: string | undefined) => c !== undefined && /^[A-Za-z0-9]$/.test(c);

/**
 * One HTML character reference at src[i] ('&'), as tdlib's decode_html_entity: &#123; &#x1F600;
 * and only &lt; &gt; &amp; &quot; by name, the ';' optional. Undefined leaves the '&' as text.
 */
function decodeEntity(src: string, i: number): { code: number; next: number } | undefined {
  let end = i + 1;
  let code = 0;
  if (src[i + 1] === '#') {
    end++;
    if (src[i + 2] === 'x') {
      end++;
      while (end < src.length && /[0-9a-fA-F]/.test(src[end]!)) code = code * 16 + parseInt(src[end++]!, 16);
    } else {
      while (end < src.length && /[0-9]/.test(src[end]!)) code = code * 10 + Number(src[end++]);
    }
    if (code === 0 || code >= 0x10ffff || end - i >= 10) return undefined;
  } else {
    while (end < src.length && /[A-Za-z]/.test(src[end]!)) end++;
    const named: Record<string, number> = { lt: 60, gt: 62, amp: 38, quot: 34 };
    code = named[src.slice(i + 1, end)] ?? 0;
    if (code === 0) return undefined;
  }
  return { code, next: src[end] === ';' ? end + 1 : end };
}

interface OpenTag { name: string; argument: string; offset: number; at: number }

/**
 * Telegram's HTML: <b>/<strong>, <i>/<em>, <u>/<ins>, <s>/<strike>/<del>, <tg-spoiler> or
 * <span class="tg-spoiler">, <a href>, <code>, <pre> (<pre><code class="language-x"> for a
 * language), <blockquote [expandable]>, <tg-emoji emoji-id>. Every '<' starts a tag and must be
 * written &lt; otherwise; tags must nest and close. A port of tdlib's parse_html.
 */
export function parseHtml(src: string): FormattedText {
  if (src.includes('\0')) throw cannotParse('Text must not contain null bytes');
  let out = '';
  const entities: TextEntity[] = [];
  const codeLanguage = new Map<TextEntity, string>(); // a <code class="language-x"> until its <pre> closes
  const open: OpenTag[] = [];
  const at = (i: number) => src[i];

  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '&') {
      const decoded = decodeEntity(src, i);
      if (decoded) {
        // A lone surrogate half is no character (tdlib: "Text contains invalid Unicode characters").
        if (decoded.code >= 0xd800 && decoded.code <= 0xdfff) {
          throw cannotParse('Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units');
        }
        out += String.fromCodePoint(decoded.code);
        i = decoded.next - 1;
        continue;
      }
    }
    if (c !== '<') {
      out += c;
      continue;
    }

    const begin = i++;
    const beginByte = () => byteOffset(src, begin);
    if (at(i) !== '/') {
      while (!isSpace(at(i)) && at(i) !== '>') i++;
      if (i >= src.length) throw cannotParse(`Unclosed start tag at byte offset ${beginByte()}`);
      const name = src.slice(begin + 1, i).toLowerCase();
      if (!HTML_TAGS.has(name)) throw cannotParse(`Unsupported start tag "${name}" at byte offset ${beginByte()}`);
      let argument = '';
      while (at(i) !== '>') {
        while (i < src.length && isSpace(at(i))) i++;
        if (at(i) === '>') break;
        const nameAt = i;
        while (!isSpace(at(i)) && !'=>/"\''.includes(at(i)!)) i++;
        const attribute = src.slice(nameAt, i);
        if (!attribute) throw cannotParse(`Empty attribute name in the tag "${name}" at byte offset ${beginByte()}`);
        while (i < src.length && isSpace(at(i))) i++;
        if (at(i) !== '=') {
          if (i >= src.length) throw cannotParse(`Unclosed start tag "${name}" at byte offset ${beginByte()}`);
          if (name === 'blockquote' && attribute === 'expandable') argument = '1';
          continue;
        }
        i++;
        while (i < src.length && isSpace(at(i))) i++;
        if (i >= src.length) throw cannotParse(`Unclosed start tag "${name}" at byte offset ${beginByte()}`);
        let value = '';
        if (at(i) !== '"' && at(i) !== '\'') {
          // An unquoted name token: letters, digits, '.' and '-', not case sensitive.
          const tokenAt = i;
          while (isAlnum(at(i)) || at(i) === '.' || at(i) === '-') i++;
          value = src.slice(tokenAt, i).toLowerCase();
          if (!isSpace(at(i)) && at(i) !== '>') throw cannotParse(`Unexpected end of name token at byte offset ${byteOffset(src, tokenAt)}`);
        } else {
          const quote = src[i++];
          while (i < src.length && at(i) !== quote) {
            if (at(i) === '&') {
              const decoded = decodeEntity(src, i);
              if (decoded) {
                value += String.fromCodePoint(decoded.code);
                i = decoded.next;
                continue;
              }
            }
            value += src[i++];
          }
          if (at(i) === quote) i++;
        }
        if (i >= src.length) throw cannotParse(`Unclosed start tag at byte offset ${beginByte()}`);
        if (name === 'a' && attribute === 'href') argument = value;
        else if (name === 'code' && attribute === 'class' && value.startsWith('language-')) argument = value.slice(9);
        else if (name === 'span' && attribute === 'class' && value.startsWith('tg-')) argument = value.slice(3);
        else if (name === 'tg-emoji' && attribute === 'emoji-id') argument = value;
        else if (name === 'blockquote' && attribute === 'expandable') argument = '1';
      }
      if (name === 'span' && argument !== 'spoiler') throw cannotParse(`Tag "span" must have class "tg-spoiler" at byte offset ${beginByte()}`);
      open.push({ name, argument, offset: out.length, at: begin });
      continue;
    }

    // An end tag: </name> closes the innermost open tag; </> closes whatever it is.
    if (open.length === 0) throw cannotParse(`Unexpected end tag at byte offset ${beginByte()}`);
    while (!isSpace(at(i)) && at(i) !== '>') i++;
    const endName = src.slice(begin + 2, i).toLowerCase();
    while (i < src.length && isSpace(at(i))) i++;
    if (at(i) !== '>') throw cannotParse(`Unclosed end tag at byte offset ${beginByte()}`);
    const tag = open.pop()!;
    if (endName && endName !== tag.name) {
      throw cannotParse(`Unmatched end tag at byte offset ${beginByte()}, expected "</${tag.name}>", found "</${endName}>"`);
    }
    if (out.length > tag.offset) {
      const entity = htmlEntity(tag, out.length - tag.offset, out.slice(tag.offset), entities, codeLanguage);
      if (entity) entities.push(entity);
    }
  }
  if (open.length > 0) throw cannotParse(`Can't find end tag corresponding to start tag "${open[open.length - 1]!.name}"`);
  return { text: out, entities: sortEntities(entities) };
}

// The entity a closed tag makes, or undefined (a bad link, or one merged into the last entity).
function htmlEntity(tag: OpenTag, length: number, inner: string, entities: TextEntity[], codeLanguage: Map<TextEntity, string>): TextEntity | undefined {
  const { name, argument, offset } = tag;
  const last = entities[entities.length - 1];
  const sameRange = last !== undefined && last.offset === offset && last.length === length;
  switch (name) {
    case 'a':
      return linkEntity(offset, length, argument || inner);
    case 'tg-emoji':
      if (!/^\d{1,19}$/.test(argument) || BigInt(argument) === 0n || BigInt(argument) > 0x7fffffffffffffffn) {
        throw cannotParse('Invalid custom emoji identifier specified');
      }
      return { type: 'custom_emoji', offset, length, customEmojiId: argument };
    case 'pre':
      // <pre><code class="language-x">…</code></pre>: one pre block with a language.
      if (sameRange && last.type === 'code' && codeLanguage.get(last)) {
        Object.assign(last, { type: 'pre', language: codeLanguage.get(last) });
        return undefined;
      }
      return { type: 'pre', offset, length };
    case 'code': {
      if (sameRange && last.type === 'pre' && argument) {
        last.language = argument;
        return undefined;
      }
      const code: TextEntity = { type: 'code', offset, length };
      if (argument) codeLanguage.set(code, argument);
      return code;
    }
    case 'blockquote':
      return { type: argument ? 'expandable_blockquote' : 'blockquote', offset, length };
    default:
      return { type: HTML_TYPES[name]!, offset, length };
  }
}

// ---- MTProto ----

/**
 * Entities as messages.sendMessage takes them. A mention by user id needs the user's InputUser
 * (id + access hash), which only the client can look up: `inputUser` gives it, or undefined to send
 * the mention as a plain tg://user link.
 */
export function toApiEntities(entities: TextEntity[], inputUser: (userId: string) => Api.TypeInputUser | undefined = () => undefined): Api.TypeMessageEntity[] {
  return entities.map((e) => {
    const range = { offset: e.offset, length: e.length };
    switch (e.type) {
      case 'bold': return new Api.MessageEntityBold(range);
      case 'italic': return new Api.MessageEntityItalic(range);
      case 'underline': return new Api.MessageEntityUnderline(range);
      case 'strikethrough': return new Api.MessageEntityStrike(range);
      case 'spoiler': return new Api.MessageEntitySpoiler(range);
      case 'code': return new Api.MessageEntityCode(range);
      case 'pre': return new Api.MessageEntityPre({ ...range, language: e.language ?? '' });
      case 'text_link': return new Api.MessageEntityTextUrl({ ...range, url: e.url! });
      case 'text_mention': {
        const user = inputUser(e.userId!);
        return user
          ? new Api.InputMessageEntityMentionName({ ...range, userId: user })
          : new Api.MessageEntityTextUrl({ ...range, url: `tg://user?id=${e.userId}` });
      }
      case 'custom_emoji': return new Api.MessageEntityCustomEmoji({ ...range, documentId: helpers.returnBigInt(e.customEmojiId!) });
      case 'blockquote': return new Api.MessageEntityBlockquote(range);
      case 'expandable_blockquote': return new Api.MessageEntityBlockquote({ ...range, collapsed: true });
    }
  });
}
