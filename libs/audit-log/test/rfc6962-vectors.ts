// The RFC 6962 test tree of transparency-dev/merkle (testonly/constants.go) and certificate-transparency-go:
// 8 leaves, every perfect node, the root at every size, and known proofs (proof/verify_test.go).
// `sh` is the one-line command that reproduces each value with coreutils and xxd.

export interface Vector {
  readonly hex: string;
  readonly sh: string;
}

/** Leaf inputs as hex. */
export const LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'] as const;

/** LEVELS[h][i] = hash of the perfect subtree of leaves [i·2^h, (i+1)·2^h). */
export const LEVELS: readonly (readonly Vector[])[] = [
  [
    { hex: '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', sh: "printf '00' | xxd -r -p | sha256sum" },
    { hex: '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', sh: "printf '0000' | xxd -r -p | sha256sum" },
    { hex: '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7', sh: "printf '0010' | xxd -r -p | sha256sum" },
    { hex: '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7', sh: "printf '002021' | xxd -r -p | sha256sum" },
    { hex: 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', sh: "printf '003031' | xxd -r -p | sha256sum" },
    { hex: '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658', sh: "printf '0040414243' | xxd -r -p | sha256sum" },
    { hex: 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', sh: "printf '005051525354555657' | xxd -r -p | sha256sum" },
    { hex: '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1', sh: "printf '00606162636465666768696a6b6c6d6e6f' | xxd -r -p | sha256sum" },
  ],
  [
    {
      hex: 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      sh: "printf '016e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7' | xxd -r -p | sha256sum",
    },
    {
      hex: '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      sh: "printf '010298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe707506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7' | xxd -r -p | sha256sum",
    },
    {
      hex: '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      sh: "printf '01bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658' | xxd -r -p | sha256sum",
    },
    {
      hex: 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      sh: "printf '01b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1' | xxd -r -p | sha256sum",
    },
  ],
  [
    {
      hex: 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      sh: "printf '01fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c1255f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e' | xxd -r -p | sha256sum",
    },
    {
      hex: '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
      sh: "printf '010ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6aca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0' | xxd -r -p | sha256sum",
    },
  ],
  [
    {
      hex: '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
      sh: "printf '01d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b76b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4' | xxd -r -p | sha256sum",
    },
  ],
];

/** ROOTS[n] = root of the tree of the first n leaves. Sizes 1, 2, 4, 8 are perfect nodes above. */
export const ROOTS: readonly Vector[] = [
  { hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', sh: "printf '' | sha256sum" },
  { hex: '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', sh: "printf '00' | xxd -r -p | sha256sum" },
  {
    hex: 'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    sh: "printf '016e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7' | xxd -r -p | sha256sum",
  },
  {
    hex: 'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    sh: "printf '01fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c1250298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7' | xxd -r -p | sha256sum",
  },
  {
    hex: 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    sh: "printf '01fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c1255f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e' | xxd -r -p | sha256sum",
  },
  {
    hex: '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    sh: "printf '01d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b' | xxd -r -p | sha256sum",
  },
  {
    hex: '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    sh: "printf '01d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b70ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a' | xxd -r -p | sha256sum",
  },
  {
    // = node(LEVELS[2][0], node(LEVELS[1][2], LEVELS[0][6])); the inner node is 837dbb15…, reproduced by
    // printf '010ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6ab08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f' | xxd -r -p | sha256sum
    hex: 'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    sh: "printf '01d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e' | xxd -r -p | sha256sum",
  },
  {
    hex: '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    sh: "printf '01d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b76b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4' | xxd -r -p | sha256sum",
  },
];

/** Known inclusion proofs of transparency-dev/merkle proof/verify_test.go (their leaf numbers are 1-based). */
export const INCLUSION_PROOFS: readonly { index: number; size: number; proof: readonly string[] }[] = [
  { index: 0, size: 1, proof: [] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];

/** Known consistency proofs of transparency-dev/merkle proof/verify_test.go. */
export const CONSISTENCY_PROOFS: readonly { size1: number; size2: number; proof: readonly string[] }[] = [
  { size1: 1, size2: 1, proof: [] },
  {
    size1: 1,
    size2: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    size1: 6,
    size2: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    size1: 2,
    size2: 5,
    proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'],
  },
  {
    size1: 6,
    size2: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];
