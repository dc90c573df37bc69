/**
 * A first name for a device, before its person names it: an adjective and an animal, 24 × 24 =
 * 576 names drawn with crypto.getRandomValues (eight animals alone made two devices of four
 * share a name in one sitting).
 */
const ADJECTIVES = [
  'Amber',
  'Brave',
  'Calm',
  'Clever',
  'Coral',
  'Dapper',
  'Eager',
  'Fuzzy',
  'Gentle',
  'Golden',
  'Happy',
  'Jolly',
  'Keen',
  'Lucky',
  'Merry',
  'Nimble',
  'Plucky',
  'Quiet',
  'Rapid',
  'Silver',
  'Sunny',
  'Swift',
  'Tidy',
  'Witty',
];
const ANIMALS = [
  'Badger',
  'Beaver',
  'Bison',
  'Crane',
  'Falcon',
  'Ferret',
  'Gecko',
  'Heron',
  'Ibex',
  'Koala',
  'Lemur',
  'Lynx',
  'Marten',
  'Moose',
  'Newt',
  'Otter',
  'Panda',
  'Puffin',
  'Quokka',
  'Raven',
  'Seal',
  'Stoat',
  'Walrus',
  'Wren',
];

/** `random(n)` gives an integer in [0, n): crypto.getRandomValues by default. */
export function freshDeviceName(random: (n: number) => number = cryptoRandom): string {
  return `${ADJECTIVES[random(ADJECTIVES.length)]} ${ANIMALS[random(ANIMALS.length)]}`;
}

function cryptoRandom(n: number): number {
  const [value] = globalThis.crypto.getRandomValues(new Uint32Array(1));
  return (value ?? 0) % n;
}
