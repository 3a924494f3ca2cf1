import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "**/node_modules/**", "docs/api/**", "jest.config.js", "jest.openssh.config.js"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-require-imports": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": [
        "error",
        {
          // ssh2's utils.generateKeyPairSync("ed25519") writes 1 key pair in 256 malformed.
          selector: "CallExpression[callee.property.name='generateKeyPairSync'][callee.object.name=/[uU]tils$/]",
          message: "ssh2's generateKeyPairSync encodes 1 ed25519 key in 256 wrongly: use generateEd25519KeyPair from test/helpers/ssh-keys.",
        },
      ],
    },
  },
  { files: ["test/helpers/ssh-keys.ts"], rules: { "no-restricted-syntax": "off" } },
);
