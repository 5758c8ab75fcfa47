// What a message may carry (issue 3 §5): text, media (image, voice, video, file), location, custom
// app-defined bytes. System events are the broker's to write. The encoded content must fit in
// MAX_BODY bytes.
import { wmq } from '../../schema/generated/chat.js'
import { RequestError } from './errors.ts'

const { INVALID_ARGUMENT, FORBIDDEN, TOO_LARGE } = wmq.ErrorCode
const invalid = (detail: string) => new RequestError(INVALID_ARGUMENT, detail)

function checkMedia (media: wmq.IMedia): void {
  if (wmq.MediaKind[media.kind ?? 0] === undefined) throw invalid(`unknown media kind ${media.kind}`)
  if (!media.ref) throw invalid('media needs a ref: where its content is (URL or object key)')
  if (!media.mime || !/^[\w.+-]+\/[\w.+-]+$/.test(media.mime)) throw invalid(`media needs a mime type like image/jpeg, not "${media.mime ?? ''}"`)
}

function checkLocation (location: wmq.ILocation): void {
  const latitude = location.latitude ?? 0
  const longitude = location.longitude ?? 0
  if (!Number.isFinite(latitude) || Math.abs(latitude) > 90) throw invalid(`latitude ${latitude} is not in [-90, 90]`)
  if (!Number.isFinite(longitude) || Math.abs(longitude) > 180) throw invalid(`longitude ${longitude} is not in [-180, 180]`)
}

/** The content's bytes as they will be stored, or a RequestError. */
export function encodeContent (content: wmq.IContent | null | undefined, maxBody: number): Uint8Array {
  const body = content && wmq.Content.fromObject(content)
  switch (body?.body) {
    case 'text':
      if (!body.text?.trim()) throw invalid('empty text')
      break
    case 'media': checkMedia(body.media!); break
    case 'location': checkLocation(body.location!); break
    case 'custom':
      if (!body.custom?.length) throw invalid('empty custom content')
      break
    case 'system': throw new RequestError(FORBIDDEN, 'system messages are written by the broker')
    default: throw invalid('a message needs content: text, media, location or custom')
  }
  const bytes = wmq.Content.encode(body).finish()
  if (bytes.length > maxBody) throw new RequestError(TOO_LARGE, `content of ${bytes.length} bytes is over the limit of ${maxBody}`)
  return bytes
}
