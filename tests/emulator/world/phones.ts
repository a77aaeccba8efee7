import { isPossiblePhoneNumber } from 'libphonenumber-js';

// Which phone numbers Telegram takes. It keeps its own numbering data, newer than any library's, so
// "valid" here means *possible*: a known country code and a length that country can have. Two ranges
// no library knows are Telegram's own: test numbers 99966XYYYY (X = the DC the account lives on; the
// login code is X five times, https://core.telegram.org/api/auth#test-accounts) and Fragment's
// anonymous +888 numbers (codes shown on fragment.com, never by SMS).

/** "+44 7700 900123" → "447700900123": Telegram keys accounts by the digits. */
export const normalizePhone = (phone: string): string => phone.replace(/[\s()+.-]/g, '');

/** The DC of a test number 99966XYYYY, or undefined for any other number. */
export function testNumberDc(digits: string): number | undefined {
  const m = /^99966([1-9])\d{4}$/.exec(digits);
  return m ? Number(m[1]) : undefined;
}

/** Fragment's anonymous numbers: +888 and eight digits (+888 0445 5312). */
export const isFragmentNumber = (digits: string): boolean => /^888\d{8}$/.test(digits);

/** Digits Telegram would take; anything else answers PHONE_NUMBER_INVALID. */
export function validPhone(digits: string): boolean {
  if (!/^\d{4,15}$/.test(digits)) return false; // E.164: at most 15 digits
  return testNumberDc(digits) !== undefined || isFragmentNumber(digits) || isPossiblePhoneNumber(`+${digits}`);
}
