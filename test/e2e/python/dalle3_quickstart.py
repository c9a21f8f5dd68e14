# The DALL-E tab of the Azure OpenAI "Generate images with the REST APIs" python quickstart, run
# for real against easel by test/e2e/python-quickstart.test.ts. Identical to the published script
# except: `<dalle3>` is replaced by the deployment name "dall-e-3", and the last lines download
# the image URL into the current directory (the test runs it in a temporary directory).
import requests
import time
import os
api_base = os.environ['AZURE_OPENAI_ENDPOINT']  # Enter your endpoint here
api_key = os.environ['AZURE_OPENAI_API_KEY']         # Enter your API key here

api_version = '2024-02-01'
url = f"{api_base}/openai/deployments/dall-e-3/images/generations?api-version={api_version}"
headers= { "api-key": api_key, "Content-Type": "application/json" }
body = {
    # Enter your prompt text here
    "prompt": "A multi-colored umbrella on the beach, disposable camera",
    "size": "1024x1024", # supported values are “1792x1024”, “1024x1024” and “1024x1792” 
    "n": 1, #The number of images to generate. Only n=1 is supported for DALL-E 3.
    "quality": "hd", # Options are “hd” and “standard”; defaults to standard 
    "style": "vivid" # Options are “natural” and “vivid”; defaults to “vivid”
}
submission = requests.post(url, headers=headers, json=body)

image_url = submission.json()['data'][0]['url']

print(image_url)

# Added: download the image (the URL needs no key; it is valid for 24 hours).
image = requests.get(image_url)
image.raise_for_status()
with open("dalle3_image.png", "wb") as f:
    f.write(image.content)
print("Image saved to: 'dalle3_image.png'")
