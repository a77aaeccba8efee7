import './fast-longs.ts'; // before 'telegram' loads: see fast-longs.ts
import { Api } from 'telegram';
import type { ReceivedMedia } from '../adapter.ts';

// What an incoming message's file is (type, file name, media type, size), for the stored message and
// its message.received event. The bytes stay at Telegram: nothing is downloaded.

interface BotFile { file_size?: number; file_name?: string; mime_type?: string }
/** The file fields of a Bot API Message (core.telegram.org/bots/api#message). */
export interface BotMessageFiles {
  photo?: BotFile[]; document?: BotFile; video?: BotFile; audio?: BotFile; voice?: BotFile; animation?: BotFile;
}

const known = (f: BotFile | undefined, type: ReceivedMedia['type'], contentType?: string): ReceivedMedia => ({
  type,
  ...(f?.file_name ? { filename: f.file_name } : {}),
  ...(f?.mime_type ?? contentType ? { contentType: f?.mime_type ?? contentType } : {}),
  ...(typeof f?.file_size === 'number' ? { size: f.file_size } : {}),
});

/** A Bot API message's file, or undefined. An animation also comes as `document`: it is checked first. */
export function botMedia(m: BotMessageFiles): ReceivedMedia | undefined {
  if (m.animation) return known(m.animation, 'animation');
  if (m.photo?.length) return known(m.photo.reduce((a, b) => ((b.file_size ?? 0) > (a.file_size ?? 0) ? b : a)), 'photo', 'image/jpeg');
  if (m.video) return known(m.video, 'video');
  if (m.voice) return known(m.voice, 'voice');
  if (m.audio) return known(m.audio, 'audio');
  if (m.document) return known(m.document, 'document');
  return undefined;
}

/** An MTProto message's file (a photo, or a document typed by its attributes), or undefined. */
export function accountMedia(media: Api.TypeMessageMedia | undefined): ReceivedMedia | undefined {
  if (media instanceof Api.MessageMediaPhoto && media.photo instanceof Api.Photo) {
    // The largest size: PhotoSize has one, a progressive size lists several.
    const sizes = media.photo.sizes.flatMap((s) => (s instanceof Api.PhotoSize ? [s.size] : s instanceof Api.PhotoSizeProgressive ? s.sizes : []));
    return { type: 'photo', contentType: 'image/jpeg', ...(sizes.length ? { size: Math.max(...sizes) } : {}) };
  }
  if (media instanceof Api.MessageMediaDocument && media.document instanceof Api.Document) {
    const d = media.document;
    const attr = <T>(c: new (...args: never[]) => T) => d.attributes.find((a): a is T & Api.TypeDocumentAttribute => a instanceof c);
    const audio = attr(Api.DocumentAttributeAudio);
    const type: ReceivedMedia['type'] = attr(Api.DocumentAttributeAnimated) ? 'animation'
      : attr(Api.DocumentAttributeVideo) ? 'video'
        : audio ? (audio.voice ? 'voice' : 'audio')
          : 'document';
    const size = Number(String(d.size));
    const filename = attr(Api.DocumentAttributeFilename)?.fileName;
    return { type, contentType: d.mimeType, ...(filename ? { filename } : {}), ...(Number.isSafeInteger(size) ? { size } : {}) };
  }
  return undefined;
}
