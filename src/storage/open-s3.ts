/**
 * The S3 adapter, loaded on first use: the AWS SDK takes about a second to load, which an embedded
 * server (files in the data directory) should not pay at every start.
 */
import type { S3BlobStore, S3BlobStoreOptions } from './s3-blob-store.ts';

/** S3BlobStore.open: checks the credentials and creates the bucket if missing (see S3BlobStoreOptions). */
export async function openS3BlobStore(options: S3BlobStoreOptions): Promise<S3BlobStore> {
  const { S3BlobStore: Store } = await import('./s3-blob-store.ts');
  return Store.open(options);
}
