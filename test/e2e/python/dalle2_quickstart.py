# The DALL-E 2 (preview) flow of the Azure OpenAI image how-to, in python with `requests`, run for
# real against easel by test/e2e/python-quickstart.test.ts: POST …/images/generations:submit,
# then GET the absolute `operation-location` until the operation ends, sleeping `retry-after`
# seconds between polls as the legacy openai 0.28 client did, then download every image into the
# current directory (the test runs it in a temporary directory).
import os
import time
import requests

api_base = os.environ['AZURE_OPENAI_ENDPOINT']  # e.g. https://docs-test-001.openai.azure.com/
api_key = os.environ['AZURE_OPENAI_API_KEY']
api_version = '2023-06-01-preview'

url = f"{api_base}openai/images/generations:submit?api-version={api_version}"
headers = { "api-key": api_key, "Content-Type": "application/json" }
body = {
    "prompt": "a multi-colored umbrella on the beach, disposable camera",
    "size": "512x512",
    "n": 2
}
submission = requests.post(url, headers=headers, json=body)
if submission.status_code != 202:
    raise SystemExit(f"submit failed: {submission.status_code} {submission.text}")
print(f"submitted: {submission.json()}")

operation_location = submission.headers['operation-location']
deadline = time.time() + 60
status = ""
while status not in ("succeeded", "failed", "canceled"):
    if time.time() > deadline:
        raise SystemExit(f"operation still {status} after 60 s")
    response = requests.get(operation_location, headers=headers)
    response.raise_for_status()
    operation = response.json()
    status = operation['status']
    if status not in ("succeeded", "failed", "canceled"):
        time.sleep(int(response.headers.get('retry-after', 10)))

if status != "succeeded":
    error = operation.get('error', {})
    raise SystemExit(f"operation {status}: {error.get('code')}: {error.get('message')}")

for idx, item in enumerate(operation['result']['data']):
    image = requests.get(item['url'])
    image.raise_for_status()
    filename = f"dalle2_image_{idx+1}.png"
    with open(filename, "wb") as f:
        f.write(image.content)
    print(f"Image saved to: '{filename}'")
